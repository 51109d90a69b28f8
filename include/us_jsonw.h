/*
 * us_jsonw.h - a JSON writer that appends straight into one growing buffer
 * in an APR pool: no tree of values, no malloc per value. For the answers
 * the API sends most (session status, session and file lists).
 *
 * The text is exactly what jansson's json_dumps(v, JSON_COMPACT |
 * JSON_ENCODE_ANY) writes for the same values in the same order: no
 * spaces; in strings '"' and '\\' escaped, \b \f \n \r \t as such, the
 * other control characters as \u00XX (upper-case hex), '/' and non-ASCII
 * UTF-8 as they are. Like jansson, it refuses strings that are not valid
 * UTF-8 (or NULL): the writer is then marked failed. Pure.
 *
 *   us_jsonw w;
 *   us_jsonw_init(&w, pool, 512);
 *   us_jsonw_object_open(&w);
 *   us_jsonw_key_string(&w, "status", "OPEN");
 *   us_jsonw_key_int(&w, "total", 3);
 *   us_jsonw_object_close(&w);
 *   text = us_jsonw_finish(&w, &len);   -> {"status":"OPEN","total":3}
 */
#ifndef US_JSONW_H
#define US_JSONW_H

#include <apr_pools.h>

#define US_JSONW_MAX_DEPTH 64

typedef struct {
    apr_pool_t *pool;
    char *buf;
    apr_size_t len;
    apr_size_t cap;
    int depth;                  /* open objects and arrays */
    unsigned long long objects; /* bit d-1: the container at depth d is an object */
    unsigned long long started; /* bit d-1: the container at depth d has a member */
    int after_key;              /* the next value belongs to a key just written */
    int failed;                 /* a bad string, or unbalanced nesting */
} us_jsonw;

/* An empty writer; size_hint: the bytes expected (the buffer grows past it). */
void us_jsonw_init(us_jsonw *w, apr_pool_t *p, apr_size_t size_hint);

void us_jsonw_object_open(us_jsonw *w);
void us_jsonw_object_close(us_jsonw *w);
void us_jsonw_array_open(us_jsonw *w);
void us_jsonw_array_close(us_jsonw *w);

/* A member's key inside an object; its value is the next thing written. */
void us_jsonw_key(us_jsonw *w, const char *key);

/* Values: in an array, or after us_jsonw_key, or alone at the top. */
void us_jsonw_string(us_jsonw *w, const char *s);
void us_jsonw_int(us_jsonw *w, long long v);
void us_jsonw_bool(us_jsonw *w, int b);
void us_jsonw_null(us_jsonw *w);

/* A value written elsewhere as JSON text (e.g. by json_dumps), copied as
 * it is: the caller vouches that text[0..len) is one valid JSON value.
 * An empty or NULL text fails the writer. */
void us_jsonw_raw(us_jsonw *w, const char *text, apr_size_t len);

/* A key and its value in one call. */
void us_jsonw_key_string(us_jsonw *w, const char *key, const char *s);
void us_jsonw_key_int(us_jsonw *w, const char *key, long long v);
void us_jsonw_key_bool(us_jsonw *w, const char *key, int b);

/* Leaving a value out after all, e.g. a list item with a refused string:
 * us_jsonw_save before writing it, us_jsonw_rewind to forget everything
 * written since (failure included), as if it had never been written. */
typedef struct {
    apr_size_t len;
    int depth;
    unsigned long long objects;
    unsigned long long started;
    int after_key;
    int failed;
} us_jsonw_mark;

void us_jsonw_save(const us_jsonw *w, us_jsonw_mark *m);
void us_jsonw_rewind(us_jsonw *w, const us_jsonw_mark *m);

/* 1 while nothing was refused. */
int us_jsonw_ok(const us_jsonw *w);

/* The text (NUL-terminated, in the pool) and its length; NULL when a
 * string was refused or objects/arrays are left open. */
const char *us_jsonw_finish(us_jsonw *w, apr_size_t *len);

#endif
