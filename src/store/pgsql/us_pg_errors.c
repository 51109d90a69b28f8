/*
 * us_pg_errors.c - PostgreSQL error messages read by their SQLSTATE (see
 * us_pg_errors.h). Pure string work: no libpq, no APR.
 */
#include "us_pg_errors.h"

#include <string.h>

/* libpq's own messages for a connection that is gone (no SQLSTATE). */
static const char *const CLIENT_BROKEN_TEXT[] = {
    "server closed the connection", "no connection to the server", "connection to server",
    "could not receive data", "could not send data", "SSL connection has been closed", NULL
};

static int is_code_char(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z');
}

/* The SQLSTATE of the line [s, end) when it is "SEVERITY:  CODE: ...". */
static int line_sqlstate(const char *s, const char *end, char code[6])
{
    const char *sep = s;
    while ((size_t)(end - sep) >= 3 && !(sep[0] == ':' && sep[1] == ' ' && sep[2] == ' '))
        sep++;
    if ((size_t)(end - sep) < 9) /* ":  " CODE ":" */
        return 0;
    const char *c = sep + 3;
    for (int i = 0; i < 5; i++)
        if (!is_code_char(c[i]))
            return 0;
    if (c[5] != ':')
        return 0;
    memcpy(code, c, 5);
    code[5] = '\0';
    return 1;
}

static const char *line_end(const char *s)
{
    const char *nl = strchr(s, '\n');
    return nl ? nl : s + strlen(s);
}

int us_pg_sqlstate(const char *msg, char code[6])
{
    code[0] = '\0';
    return msg ? line_sqlstate(msg, line_end(msg), code) : 0;
}

static us_pg_err_kind code_kind(const char *code)
{
    static const struct {
        const char *code;
        us_pg_err_kind kind;
    } KINDS[] = {
        {"40001", US_PG_ERR_DEADLOCK},     /* serialization_failure */
        {"40P01", US_PG_ERR_DEADLOCK},     /* deadlock_detected */
        {"55P03", US_PG_ERR_LOCK_TIMEOUT}, /* lock_not_available: lock_timeout, NOWAIT */
        {"57014", US_PG_ERR_BUSY},         /* query_canceled: statement_timeout */
        {"57P03", US_PG_ERR_BUSY},         /* cannot_connect_now: starting up, shutting down */
        {"08P01", US_PG_ERR_OTHER},        /* protocol_violation: a statement's error too */
        {"57P01", US_PG_ERR_BROKEN},       /* admin_shutdown: the backend was ended */
        {"57P02", US_PG_ERR_BROKEN},       /* crash_shutdown */
        {"57P04", US_PG_ERR_BROKEN},       /* database_dropped */
        {"57P05", US_PG_ERR_BROKEN},       /* idle_session_timeout */
        {"25P03", US_PG_ERR_BROKEN},       /* idle_in_transaction_session_timeout */
        {"26000", US_PG_ERR_BROKEN},       /* a prepared statement the connection lost */
    };
    for (size_t i = 0; i < sizeof(KINDS) / sizeof(KINDS[0]); i++)
        if (strcmp(code, KINDS[i].code) == 0)
            return KINDS[i].kind;
    if (code[0] == '0' && code[1] == '8') /* class 08: connection exceptions */
        return US_PG_ERR_BROKEN;
    if (code[0] == '5' && code[1] == '3') /* class 53: out of memory, disk, connections */
        return US_PG_ERR_BUSY;
    return US_PG_ERR_OTHER;
}

/* The kind of the message's SQLSTATE, on its first line, where the server's
 * error begins: the lines after it may quote data (a DETAIL with a key's
 * value) and are not read. A message without one is libpq's own, told by
 * its text. (A lost connection is also told by libpq's status, PQstatus,
 * which the store checks besides.) */
us_pg_err_kind us_pg_error_kind(const char *msg)
{
    char code[6];
    if (!msg)
        return US_PG_ERR_OTHER;
    if (us_pg_sqlstate(msg, code))
        return code_kind(code);
    for (const char *const *t = CLIENT_BROKEN_TEXT; *t; t++)
        if (strstr(msg, *t))
            return US_PG_ERR_BROKEN;
    return US_PG_ERR_OTHER;
}

/* n without a UTF-8 sequence that the cut at n left incomplete. */
static size_t whole_utf8(const char *out, size_t n)
{
    size_t k = n, back = 0;
    while (k > 0 && back < 3 && ((unsigned char)out[k - 1] & 0xC0) == 0x80) {
        k--;
        back++;
    }
    if (k == 0)
        return n;
    unsigned char lead = (unsigned char)out[k - 1];
    size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
    return need > back + 1 ? k - 1 : n;
}

/* The lines verbose mode adds that say where, not what: the server's source
 * line and the names of the objects (libpq labels them in httpd's
 * language, C on Debian). */
static int is_where_line(const char *s)
{
    static const char *const WHERE[] = { "LOCATION:", "SCHEMA NAME:", "TABLE NAME:",
                                         "COLUMN NAME:", "DATATYPE NAME:", "CONSTRAINT NAME:",
                                         NULL };
    for (const char *const *w = WHERE; *w; w++)
        if (strncmp(s, *w, strlen(*w)) == 0)
            return 1;
    return 0;
}

void us_pg_error_text(const char *msg, char *out, size_t cap)
{
    size_t n = 0;
    int cut = 0;
    for (const char *s = msg ? msg : ""; *s && !cut;) {
        const char *end = line_end(s);
        if (!is_where_line(s) && end > s) {
            if (n > 0 && n + 1 < cap)
                out[n++] = ' ';
            for (const char *c = s; c < end; c++) {
                if (n + 1 >= cap) {
                    cut = 1;
                    break;
                }
                out[n++] = *c == '\t' || *c == '\r' ? ' ' : *c;
            }
        }
        s = *end ? end + 1 : end;
    }
    if (cut)
        n = whole_utf8(out, n);
    while (n > 0 && out[n - 1] == ' ')
        n--;
    out[n] = '\0';
}
