/*
 * us_pg_errors.h - what a PostgreSQL error message means for the store: try
 * again, the connection is gone, or a plain error.
 *
 * apr_dbd's pgsql driver hands over message text only (PQerrorMessage). The
 * store sets the connection's error verbosity to PQERRORS_VERBOSE, so every
 * error the server reports carries its SQLSTATE ("ERROR:  40P01: deadlock
 * detected"), whatever language the server's lc_messages writes in; the
 * classification reads that code. Messages libpq writes itself (a dropped
 * connection) have no SQLSTATE and are in the httpd process's language,
 * which Debian's apache2 sets to C: those are matched by their text.
 */
#ifndef US_PG_ERRORS_H
#define US_PG_ERRORS_H

#include <stddef.h>

typedef enum {
    US_PG_ERR_OTHER = 0,      /* a plain error: the request fails */
    US_PG_ERR_DEADLOCK,       /* 40001, 40P01: run the transaction again */
    US_PG_ERR_LOCK_TIMEOUT,   /* 55P03: once more (a deadlock's victim may see it) */
    US_PG_ERR_BUSY,           /* a statement timeout, a server starting or full: later */
    US_PG_ERR_BROKEN,         /* the connection is gone: open a new one */
} us_pg_err_kind;

/* The SQLSTATE of msg's first line ("SEVERITY:  CODE: text") into code
 * (6 bytes, NUL-terminated); 1 when found, else 0 with code "". */
int us_pg_sqlstate(const char *msg, char code[6]);

/* What msg, a PQerrorMessage in verbose form, means; NULL is OTHER. */
us_pg_err_kind us_pg_error_kind(const char *msg);

/* msg as one line for a log, into out (cap bytes, cap > 0, NUL-terminated,
 * cut when longer, never inside a UTF-8 sequence: the text reaches JSON):
 * its lines joined by a space, without the lines verbose mode adds that
 * say where (LOCATION: the server's source line; the object names). */
void us_pg_error_text(const char *msg, char *out, size_t cap);

#endif
