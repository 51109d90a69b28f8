/*
 * us_pg_conninfo.h - the connection string handed to libpq.
 *
 * libpq waits without limit unless told otherwise, and the kernel's TCP
 * defaults notice a dead peer only after hours (the first keepalive probe
 * after 2 h; data left unacknowledged is sent again for some 15 min): a
 * database host that dies, or a network that drops packets, would hold
 * httpd's parent at startup or in its expiry sweep (then it reaps no child
 * and ignores apachectl stop) and a child's request for as long as the
 * network stays silent. The operator's string is kept as given, with these
 * defaults added for each of the keys it does not name:
 *
 * - connect_timeout=10 (s): a connection attempt; not added either when
 *   httpd's environment sets PGCONNECT_TIMEOUT (libpq's default for it).
 * - keepalives_idle=10, keepalives_interval=5, keepalives_count=3 (s, s,
 *   probes): an idle connection (or one waiting for an answer) is probed
 *   after 10 s without traffic, then every 5 s, so a request does not start
 *   on a dead one unawares. Ten seconds of idleness costs one small packet
 *   per connection.
 * - tcp_user_timeout=30000 (ms): a connection whose sent data, or whose
 *   probes, stay unacknowledged for 30 s is ended (Linux: with it set, the
 *   keepalive ends the connection on this time, not on the probes' count).
 *   A long statement on a live server is not: the server's kernel
 *   acknowledges the statement and answers the probes while it runs.
 *
 * A dead peer is thus noticed within about 30 s. Over a Unix-domain socket
 * libpq ignores the last four. Named values are kept, whatever they are
 * (keepalives=0 included). A service file's (service=) values for these
 * keys are overridden by the defaults: name them in the string instead.
 */
#ifndef US_PG_CONNINFO_H
#define US_PG_CONNINFO_H

#include <apr_pools.h>

/* seconds a connection attempt may take when the operator says nothing */
#define US_PG_CONNECT_TIMEOUT_S 10
/* TCP keepalive: idle seconds before the first probe, seconds between
 * probes, unanswered probes before the connection is dead */
#define US_PG_KEEPALIVES_IDLE_S 10
#define US_PG_KEEPALIVES_INTERVAL_S 5
#define US_PG_KEEPALIVES_COUNT 3
/* milliseconds sent data may stay unacknowledged */
#define US_PG_TCP_USER_TIMEOUT_MS 30000

/* conninfo (key=value pairs or a postgres:// URI, whose query parameters
 * get them) with the defaults above added for the keys it does not name
 * (connect_timeout not either when env_timeout, PGCONNECT_TIMEOUT's value
 * or NULL, is set). Keys are matched whole, as libpq parses the string
 * (PQconninfoParse); a string libpq cannot parse is returned as given, for
 * libpq to report when connecting. Allocated in p when changed; conninfo
 * itself when nothing is added. */
const char *us_pg_conninfo_with_defaults(apr_pool_t *p, const char *conninfo,
                                         const char *env_timeout);

#endif
