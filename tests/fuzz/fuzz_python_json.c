/* libFuzzer: the CPython-compatible JSON parser and the body envelope.
 * Invariants: no crash, no leak; OK yields a value; a decode error has a
 * position within the input; a valid object's re-serialisation parses again. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "us_python_json.h"
#include "us_validate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *out = NULL;
    us_python_json_error err;
    us_python_json_status st = us_python_json_parse((const char *)data, size, &out, &err);
    if (st == US_PYTHON_JSON_OK) {
        if (!out)
            abort();
        char *text = json_dumps(out, JSON_COMPACT | JSON_ENCODE_ANY | JSON_ALLOW_NUL);
        json_t *again = NULL;
        if (text && us_python_json_parse(text, strlen(text), &again, &err) != US_PYTHON_JSON_OK)
            abort(); /* what we print must be what we read */
        json_decref(again);
        free(text);
        json_decref(out);
    }
    else if (st == US_PYTHON_JSON_DECODE_ERROR && (err.pos < 0 || (size_t)err.pos > size)) {
        abort();
    }

    /* the whole body path of a create request */
    json_t *errs = json_array(), *obj = NULL;
    const char *modes[] = { "KEEP", "OVERWRITE", "FAIL", NULL }, *mode;
    int b;
    long long n;
    if (us_validate_body_object(errs, "application/json", (const char *)data, size, 0, &obj) == US_BODY_OK) {
        us_validate_body_enum(errs, obj, "write_mode", modes, "KEEP", &mode);
        us_validate_body_bool(errs, obj, "parallel_processing_enabled", 0, &b);
        us_validate_body_int(errs, obj, "expires_in_seconds", 86400, 1, 86400, &n);
        us_validate_body_literal(errs, obj, "status", "CLOSED");
        json_decref(obj);
    }
    char *dump = json_dumps(errs, JSON_COMPACT);
    free(dump);
    json_decref(errs);
    return 0;
}
