/*
 * us_pyjson.h - parse a request body exactly as CPython's json.loads(bytes)
 * does (the parser FastAPI uses), building jansson values.
 *
 * Why not json_loads(): the 422 "json_invalid" item must carry Python's
 * error message ("Expecting value", ...) and its position in *characters*,
 * and Python accepts inputs jansson rejects (and vice versa).
 *
 * Pure: depends on jansson only.
 */
#ifndef US_PYJSON_H
#define US_PYJSON_H

#include <stddef.h>
#include <jansson.h>

typedef enum {
    US_PYJSON_OK = 0,
    /* json.JSONDecodeError: err->msg and err->pos are Python's e.msg / e.pos */
    US_PYJSON_DECODE_ERROR,
    /* Anything else Python would raise while decoding (UnicodeDecodeError,
     * RecursionError) or a value jansson cannot hold (NaN, Infinity):
     * FastAPI answers 400 "There was an error parsing the body". */
    US_PYJSON_UNPARSABLE
} us_pyjson_status;

typedef struct {
    long pos;      /* offset in code points from the start (after a UTF-8 BOM) */
    char msg[96];  /* e.g. "Expecting ',' delimiter" */
} us_pyjson_error;

/* Maximum nesting of arrays/objects; deeper input is US_PYJSON_UNPARSABLE. */
#define US_PYJSON_MAX_DEPTH 512

/*
 * Parse buf[0..len). On US_PYJSON_OK *out is a new reference (the caller
 * json_decref()s it; JSON null is returned as json_null()). On failure *out
 * is NULL and, for US_PYJSON_DECODE_ERROR, *err is filled.
 */
us_pyjson_status us_pyjson_parse(const char *buf, size_t len, json_t **out,
                                 us_pyjson_error *err);

#endif
