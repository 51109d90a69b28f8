/*
 * us_json_writer.h - a JSON writer that appends straight into one growing buffer
 * in an APR pool: no tree of values, no malloc per value. For the answers
 * the API sends most (session status, session and file lists).
 *
 * The text is what FastAPI's answers hold, Python's json.dumps(v,
 * ensure_ascii=False, separators=(",", ":")): no spaces; in strings '"'
 * and '\\' escaped, \b \f \n \r \t as such, the other control characters
 * as \u00xx (lower-case hex), '/' and non-ASCII UTF-8 as they are; a
 * float as Python's repr() writes it (us_float_repr.h). That is jansson's
 * json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) but for two things: jansson
 * writes a float with 17 significant digits (1.1000000000000001 for 1.1)
 * and its \u escapes in upper-case hex.
 * Like jansson, it refuses strings that are not valid UTF-8 (or NULL): the
 * writer is then marked failed. Pure (with jansson for us_json_write_json).
 *
 *   us_json_writer w;
 *   us_json_write_init(&w, pool, 512);
 *   us_json_write_object_open(&w);
 *   us_json_write_key_string(&w, "status", "OPEN");
 *   us_json_write_key_int(&w, "total", 3);
 *   us_json_write_object_close(&w);
 *   text = us_json_write_finish(&w, &len);   -> {"status":"OPEN","total":3}
 */
#ifndef US_JSON_WRITER_H
#define US_JSON_WRITER_H

#include <apr_pools.h>
#include <jansson.h>

#define US_JSON_WRITER_MAX_DEPTH 64

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
} us_json_writer;

/* An empty writer; size_hint: the bytes expected (the buffer grows past it). */
void us_json_write_init(us_json_writer *w, apr_pool_t *p, apr_size_t size_hint);

void us_json_write_object_open(us_json_writer *w);
void us_json_write_object_close(us_json_writer *w);
void us_json_write_array_open(us_json_writer *w);
void us_json_write_array_close(us_json_writer *w);

/* A member's key inside an object; its value is the next thing written. */
void us_json_write_key(us_json_writer *w, const char *key);

/* Values: in an array, or after us_json_write_key, or alone at the top. */
void us_json_write_string(us_json_writer *w, const char *s);
void us_json_write_int(us_json_writer *w, long long v);
void us_json_write_bool(us_json_writer *w, int b);
void us_json_write_null(us_json_writer *w);
/* A float as Python writes it; NaN or an infinity fails the writer. */
void us_json_write_real(us_json_writer *w, double v);
/* A jansson value with everything in it (any nesting), as json.dumps
 * writes it: members in the object's order, a string's NULs as \u0000. */
void us_json_write_json(us_json_writer *w, const json_t *v);

/* A value written elsewhere as JSON text (e.g. by json_dumps), copied as
 * it is: the caller vouches that text[0..len) is one valid JSON value.
 * An empty or NULL text fails the writer. */
void us_json_write_raw(us_json_writer *w, const char *text, apr_size_t len);

/* A key and its value in one call. */
void us_json_write_key_string(us_json_writer *w, const char *key, const char *s);
void us_json_write_key_int(us_json_writer *w, const char *key, long long v);
void us_json_write_key_bool(us_json_writer *w, const char *key, int b);

/* Leaving a value out after all, e.g. a list item with a refused string:
 * us_json_write_save before writing it, us_json_write_rewind to forget everything
 * written since (failure included), as if it had never been written. */
typedef struct {
    apr_size_t len;
    int depth;
    unsigned long long objects;
    unsigned long long started;
    int after_key;
    int failed;
} us_json_write_mark;

void us_json_write_save(const us_json_writer *w, us_json_write_mark *m);
void us_json_write_rewind(us_json_writer *w, const us_json_write_mark *m);

/* 1 while nothing was refused. */
int us_json_write_ok(const us_json_writer *w);

/* What was written since the start or the last take (*len bytes, maybe 0,
 * not NUL-terminated), the buffer then emptied for reuse, the nesting kept:
 * a long text sent piece by piece (us_json_write_finish gives the last).
 * Valid until the next write; NULL when a string was refused. A mark
 * saved before a take is not to be rewound to after it. */
const char *us_json_write_take(us_json_writer *w, apr_size_t *len);

/* The text (NUL-terminated, in the pool) and its length; NULL when a
 * string was refused or objects/arrays are left open. */
const char *us_json_write_finish(us_json_writer *w, apr_size_t *len);

#endif
