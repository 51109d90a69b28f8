/* libFuzzer: policy verification and the key file parser, fed hostile input.
 * Invariants: a forged policy never verifies; parsing never crashes. */
#include <apr_general.h>
#include <apr_strings.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "us_auth.h"
#include "us_filename.h"
#include "us_policy.h"

static const unsigned char SECRET[32] = "fuzz-secret-fuzz-secret-fuzz-sec";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static apr_pool_t *pool;
    if (!pool) {
        apr_initialize();
        apr_pool_create(&pool, NULL);
    }
    char *s = apr_pstrmemdup(pool, (const char *)data, size);
    /* split the input into a policy and a signature at the first newline */
    char *nl = strchr(s, '\n');
    const char *sig = nl ? (*nl = '\0', nl + 1) : "";
    us_policy_doc doc;
    us_policy_rc rc = us_policy_verify(pool, SECRET, sizeof(SECRET), s, sig, 0, &doc);
    if (rc == US_POLICY_OK || rc == US_POLICY_EXPIRED || rc == US_POLICY_MALFORMED) {
        char expect[65];
        us_hmac_hex(SECRET, sizeof(SECRET), s, strlen(s), expect);
        if (strcmp(expect, sig) != 0)
            abort(); /* accepted a signature that is not ours */
    }

    char err[256];
    us_keyring *kr;
    const char *text = apr_pstrmemdup(pool, (const char *)data, size);
    if (us_keyring_parse(pool, text, size, &kr, err, sizeof(err)))
        (void)us_keyring_lookup(kr, "some key");

    const char *name = us_filename_from_part(pool, s, NULL);
    if (name && !us_filename_problem(name) && (strchr(name, '/') || strcmp(name, "..") == 0))
        abort(); /* a name that could leave the session directory */
    (void)us_key_substitute(pool, s, "x", US_NAME_MAX);
    apr_pool_clear(pool);
    return 0;
}
