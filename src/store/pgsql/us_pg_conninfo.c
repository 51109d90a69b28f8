/* The connection string handed to libpq (see us_pg_conninfo.h). */
#include "us_pg_conninfo.h"

#include <libpq-fe.h>
#include <string.h>
#include <apr_strings.h>

#define STR_(x) #x
#define STR(x) STR_(x)

static const struct {
    const char *key;
    const char *value;
} defaults[] = {
    {"connect_timeout", STR(US_PG_CONNECT_TIMEOUT_S)},
    {"keepalives_idle", STR(US_PG_KEEPALIVES_IDLE_S)},
    {"keepalives_interval", STR(US_PG_KEEPALIVES_INTERVAL_S)},
    {"keepalives_count", STR(US_PG_KEEPALIVES_COUNT)},
    {"tcp_user_timeout", STR(US_PG_TCP_USER_TIMEOUT_MS)},
};
#define N_DEFAULTS (sizeof(defaults) / sizeof(defaults[0]))

static int is_uri(const char *s)
{
    return strncmp(s, "postgresql://", 13) == 0 || strncmp(s, "postgres://", 11) == 0;
}

const char *us_pg_conninfo_with_defaults(apr_pool_t *p, const char *conninfo,
                                         const char *env_timeout)
{
    int named[N_DEFAULTS] = {0};
    char *perr = NULL;
    PQconninfoOption *opts = PQconninfoParse(conninfo, &perr);
    if (!opts) {
        PQfreemem(perr);
        return conninfo; /* libpq says what is wrong with it when connecting */
    }
    for (const PQconninfoOption *o = opts; o->keyword; o++)
        for (size_t i = 0; i < N_DEFAULTS; i++)
            if (o->val && strcmp(o->keyword, defaults[i].key) == 0)
                named[i] = 1;
    PQconninfoFree(opts);
    if (env_timeout && *env_timeout)
        named[0] = 1; /* connect_timeout */

    const int uri = is_uri(conninfo);
    const char *out = conninfo;
    int first = 1;
    for (size_t i = 0; i < N_DEFAULTS; i++) {
        if (named[i])
            continue;
        const char *sep;
        if (uri)
            sep = first && !strchr(conninfo, '?') ? "?" : "&";
        else
            sep = first && !*conninfo ? "" : " ";
        out = apr_pstrcat(p, out, sep, defaults[i].key, "=", defaults[i].value, NULL);
        first = 0;
    }
    return out;
}
