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
    while (sep + 3 <= end && !(sep[0] == ':' && sep[1] == ' ' && sep[2] == ' '))
        sep++;
    const char *c = sep + 3;
    if (c + 6 > end)
        return 0;
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
    for (const char *s = msg; s && *s;) {
        const char *end = line_end(s);
        if (line_sqlstate(s, end, code))
            return 1;
        s = *end ? end + 1 : end;
    }
    return 0;
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
        {"53300", US_PG_ERR_BUSY},         /* too_many_connections */
        {"57P03", US_PG_ERR_BUSY},         /* cannot_connect_now: starting up, shutting down */
        {"57P01", US_PG_ERR_BROKEN},       /* admin_shutdown: the backend was ended */
        {"57P02", US_PG_ERR_BROKEN},       /* crash_shutdown */
        {"57P04", US_PG_ERR_BROKEN},       /* database_dropped */
        {"57P05", US_PG_ERR_BROKEN},       /* idle_session_timeout */
        {"25P03", US_PG_ERR_BROKEN},       /* idle_in_transaction_session_timeout */
        {"26000", US_PG_ERR_BROKEN},       /* a prepared statement a reset lost */
    };
    if (code[0] == '0' && code[1] == '8') /* class 08: connection exceptions */
        return US_PG_ERR_BROKEN;
    for (size_t i = 0; i < sizeof(KINDS) / sizeof(KINDS[0]); i++)
        if (strcmp(code, KINDS[i].code) == 0)
            return KINDS[i].kind;
    return US_PG_ERR_OTHER;
}

/* The kind of every SQLSTATE in msg, the most pressing of them: a broken
 * connection over a retry, a retry over a plain error (a message may hold
 * the statement's error and the FATAL that ended the backend after it). */
us_pg_err_kind us_pg_error_kind(const char *msg)
{
    us_pg_err_kind kind = US_PG_ERR_OTHER;
    if (!msg)
        return kind;
    for (const char *const *t = CLIENT_BROKEN_TEXT; *t; t++)
        if (strstr(msg, *t))
            return US_PG_ERR_BROKEN;
    char code[6];
    for (const char *s = msg; *s;) {
        const char *end = line_end(s);
        if (line_sqlstate(s, end, code)) {
            us_pg_err_kind k = code_kind(code);
            if (k == US_PG_ERR_BROKEN)
                return k;
            if (kind == US_PG_ERR_OTHER || (k != US_PG_ERR_OTHER && k < kind))
                kind = k;
        }
        s = *end ? end + 1 : end;
    }
    return kind;
}

void us_pg_error_text(const char *msg, char *out, size_t cap)
{
    size_t n = 0;
    for (const char *s = msg ? msg : ""; *s && n + 1 < cap;) {
        const char *end = line_end(s);
        if (strncmp(s, "LOCATION:", 9) != 0 && end > s) {
            if (n > 0)
                out[n++] = ' ';
            for (const char *c = s; c < end && n + 1 < cap; c++)
                out[n++] = *c == '\t' || *c == '\r' ? ' ' : *c;
        }
        s = *end ? end + 1 : end;
    }
    while (n > 0 && out[n - 1] == ' ')
        n--;
    out[n] = '\0';
}
