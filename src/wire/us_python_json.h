/*
 * us_python_json.h - parse a request body exactly as CPython's json.loads(bytes)
 * does (the parser FastAPI uses), building jansson values.
 *
 * Why not json_loads(): the 422 "json_invalid" item must carry Python's
 * error message ("Expecting value", ...) and its position in *characters*,
 * and Python accepts inputs jansson rejects (and vice versa).
 *
 * Pure: depends on jansson only.
 */
#ifndef US_PYTHON_JSON_H
#define US_PYTHON_JSON_H

#include <stddef.h>
#include <jansson.h>

typedef enum {
    US_PYTHON_JSON_OK = 0,
    /* json.JSONDecodeError: err->msg and err->pos are Python's e.msg / e.pos */
    US_PYTHON_JSON_DECODE_ERROR,
    /* Anything else Python would raise while decoding (UnicodeDecodeError,
     * RecursionError) or a value jansson cannot hold (NaN, Infinity):
     * FastAPI answers 400 "There was an error parsing the body". */
    US_PYTHON_JSON_UNPARSABLE,
    /* More values than us_python_json_parse_capped allows: the service's
     * own limit, not Python's (a body of small values costs a jansson node
     * each, tens of times its size in memory): answered 413 like an
     * oversized body. */
    US_PYTHON_JSON_TOO_LARGE
} us_python_json_status;

typedef struct {
    long pos;      /* offset in code points from the start (after a UTF-8 BOM) */
    char msg[96];  /* e.g. "Expecting ',' delimiter" */
} us_python_json_error;

/* Maximum nesting of arrays/objects; deeper input is US_PYTHON_JSON_UNPARSABLE. */
#define US_PYTHON_JSON_MAX_DEPTH 512

/*
 * Parse buf[0..len). On US_PYTHON_JSON_OK *out is a new reference (the caller
 * json_decref()s it; JSON null is returned as json_null()). On failure *out
 * is NULL and, for US_PYTHON_JSON_DECODE_ERROR, *err is filled.
 */
us_python_json_status us_python_json_parse(const char *buf, size_t len, json_t **out,
                                 us_python_json_error *err);

/* The same, refusing a document of more than max_values values (0: no
 * limit) with US_PYTHON_JSON_TOO_LARGE before it is built further. */
us_python_json_status us_python_json_parse_capped(const char *buf, size_t len, size_t max_values,
                                                  json_t **out, us_python_json_error *err);

#endif
