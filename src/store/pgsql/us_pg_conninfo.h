/*
 * us_pg_conninfo.h - the connection string handed to libpq.
 *
 * libpq waits for a connection without limit unless told otherwise: a
 * database host that drops packets would hold httpd's parent at startup
 * (and a child's request) for as long as the network stays silent. The
 * operator's string is kept as given, with a connect_timeout added when
 * it names none and httpd's environment sets no PGCONNECT_TIMEOUT (libpq's
 * default for it).
 */
#ifndef US_PG_CONNINFO_H
#define US_PG_CONNINFO_H

#include <apr_pools.h>

/* seconds a connection attempt may take when the operator says nothing */
#define US_PG_CONNECT_TIMEOUT_S 10

/* conninfo (key=value pairs or a postgres:// URI) with
 * connect_timeout=US_PG_CONNECT_TIMEOUT_S added unless it holds a
 * connect_timeout or env_timeout (PGCONNECT_TIMEOUT's value, or NULL) is
 * set; allocated in p when changed. */
const char *us_pg_conninfo_with_timeout(apr_pool_t *p, const char *conninfo,
                                        const char *env_timeout);

#endif
