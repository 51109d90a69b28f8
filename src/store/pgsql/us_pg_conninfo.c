/* The connection string handed to libpq (see us_pg_conninfo.h). */
#include "us_pg_conninfo.h"

#include <string.h>
#include <apr_strings.h>

#define STR_(x) #x
#define STR(x) STR_(x)

static int is_uri(const char *s)
{
    return strncmp(s, "postgresql://", 13) == 0 || strncmp(s, "postgres://", 11) == 0;
}

const char *us_pg_conninfo_with_timeout(apr_pool_t *p, const char *conninfo,
                                        const char *env_timeout)
{
    if ((env_timeout && *env_timeout) || strstr(conninfo, "connect_timeout"))
        return conninfo;
    if (is_uri(conninfo))
        return apr_pstrcat(p, conninfo, strchr(conninfo, '?') ? "&" : "?",
                           "connect_timeout=" STR(US_PG_CONNECT_TIMEOUT_S), NULL);
    /* libpq takes the last of a repeated key; none is repeated here */
    return apr_pstrcat(p, conninfo, *conninfo ? " " : "",
                       "connect_timeout=" STR(US_PG_CONNECT_TIMEOUT_S), NULL);
}
