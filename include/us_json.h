/* us_json.h - jansson helpers tied to APR pools (pure). */
#ifndef US_JSON_H
#define US_JSON_H

#include <apr_pools.h>
#include <jansson.h>

/* Hands p the reference j holds: j is decref'ed when p is cleared or
 * destroyed, so its users need not count references. Returns j (NULL
 * passes through). */
json_t *us_json_pool_own(apr_pool_t *p, json_t *j);

/* Compact JSON text of j as Python's json.dumps writes it (us_json_writer.h),
 * allocated in p (NULL when j is NULL). */
char *us_json_dump_pool(apr_pool_t *p, const json_t *j);

/* Whether a string or key anywhere in j holds U+0000: metadata cannot
 * (PostgreSQL's jsonb refuses it, so no store keeps it). */
int us_json_has_nul(const json_t *j);

/* Metadata text: the compact text of a JSON object parsed from
 * text[0..len), in p (*out; NULL unless US_JSON_META_OK). */
typedef enum {
    US_JSON_META_OK,
    US_JSON_META_NOT_OBJECT, /* not JSON, or not an object */
    US_JSON_META_NUL         /* an object holding U+0000 */
} us_json_meta_rc;
us_json_meta_rc us_json_meta_text(apr_pool_t *p, const char *text, size_t len, char **out);

/* The same, NULL unless US_JSON_META_OK. */
char *us_json_object_text(apr_pool_t *p, const char *text, size_t len);

/* Whether text is JSON null, read as Python would (surrounding whitespace,
 * a UTF-8 BOM). */
int us_json_text_is_null(const char *text, size_t len);

/* RFC 7396 JSON merge patch: target (NULL: absent) patched by patch, as a
 * new reference; neither argument changes. A null in patch removes the key. */
json_t *us_json_merge_patch(const json_t *target, const json_t *patch);

#endif
