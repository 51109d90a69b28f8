/* us_json.c - jansson helpers tied to APR pools (pure). */
#include "us_json.h"
#include "us_json_writer.h"
#include "us_python_json.h"

#include <apr_strings.h>
#include <stdlib.h>
#include <string.h>

static apr_status_t decref_cleanup(void *j)
{
    json_decref(j);
    return APR_SUCCESS;
}

json_t *us_json_pool_own(apr_pool_t *p, json_t *j)
{
    if (j)
        apr_pool_cleanup_register(p, j, decref_cleanup, apr_pool_cleanup_null);
    return j;
}

char *us_json_dump_pool(apr_pool_t *p, const json_t *j)
{
    us_json_writer w;
    if (!j)
        return NULL;
    us_json_write_init(&w, p, 256);
    us_json_write_json(&w, j);
    return (char *)us_json_write_finish(&w, NULL);
}

int us_json_has_nul(const json_t *j)
{
    const char *key;
    size_t key_len, i;
    json_t *v;
    switch (json_typeof(j)) {
    case JSON_STRING:
        return memchr(json_string_value(j), '\0', json_string_length(j)) != NULL;
    case JSON_ARRAY:
        json_array_foreach(j, i, v) {
            if (us_json_has_nul(v))
                return 1;
        }
        return 0;
    case JSON_OBJECT:
        json_object_keylen_foreach((json_t *)j, key, key_len, v) {
            if (memchr(key, '\0', key_len) || us_json_has_nul(v))
                return 1;
        }
        return 0;
    default:
        return 0;
    }
}

us_json_meta_rc us_json_meta_text(apr_pool_t *p, const char *text, size_t len, char **out)
{
    json_t *j = NULL;
    us_python_json_error e;
    *out = NULL;
    /* read as Python would (the platform's clients write it with Python) */
    if (us_python_json_parse(text, len, &j, &e) != US_PYTHON_JSON_OK)
        return US_JSON_META_NOT_OBJECT;
    us_json_meta_rc rc = !json_is_object(j) ? US_JSON_META_NOT_OBJECT
                         : us_json_has_nul(j) ? US_JSON_META_NUL : US_JSON_META_OK;
    if (rc == US_JSON_META_OK)
        *out = us_json_dump_pool(p, j);
    json_decref(j);
    return rc;
}

char *us_json_object_text(apr_pool_t *p, const char *text, size_t len)
{
    char *out;
    return us_json_meta_text(p, text, len, &out) == US_JSON_META_OK ? out : NULL;
}

int us_json_text_is_null(const char *text, size_t len)
{
    json_t *j = NULL;
    us_python_json_error e;
    int is_null = us_python_json_parse(text, len, &j, &e) == US_PYTHON_JSON_OK && json_is_null(j);
    json_decref(j);
    return is_null;
}

json_t *us_json_merge_patch(const json_t *target, const json_t *patch)
{
    const char *key;
    json_t *value;
    if (!json_is_object(patch))
        return json_deep_copy(patch);
    json_t *out = json_is_object(target) ? json_deep_copy(target) : json_object();
    json_object_foreach((json_t *)patch, key, value) {
        if (json_is_null(value)) {
            json_object_del(out, key);
            continue;
        }
        json_object_set_new(out, key, us_json_merge_patch(json_object_get(out, key), value));
    }
    return out;
}
