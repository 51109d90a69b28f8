/* libFuzzer: UUID parsing, query coercions, routing and query strings.
 * Invariants: an accepted UUID is canonical and parses to itself. */
#include <apr_general.h>
#include <apr_strings.h>
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "us_router.h"
#include "us_validate.h"
#include "us_uuid.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static apr_pool_t *pool;
    char *s = malloc(size + 1), out[37], again[37], reason[256];
    memcpy(s, data, size);
    s[size] = '\0';
    if (!pool) {
        apr_initialize();
        apr_pool_create(&pool, NULL);
    }
    if (us_uuid_parse(s, out, reason, sizeof(reason))) {
        if (strlen(out) != 36 || !us_uuid_parse(out, again, reason, sizeof(reason)) ||
            strcmp(out, again) != 0)
            abort();
    }
    json_t *errs = json_array();
    long long n;
    int b;
    const char *states[] = { "PENDING", "FAILED", "FINISHED", NULL }, *st;
    us_validate_path_uuid(errs, "session_id", s, out);
    us_validate_query_int(errs, "limit", s, 10, 1, 100, &n);
    us_validate_query_bool(errs, "is_expired", s, &b);
    us_validate_query_enum(errs, "ingestion_status", s, states, &st);
    char *dump = json_dumps(errs, JSON_COMPACT);
    if (!dump)
        abort(); /* every item must be serialisable (valid UTF-8) */
    free(dump);
    json_decref(errs);

    us_route r;
    us_route_match(pool, s, "GET", &r);
    (void)us_workspace_name_valid(s);
    (void)us_query_get(pool, s, "limit");
    apr_pool_clear(pool);
    free(s);
    return 0;
}
