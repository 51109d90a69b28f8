/*
 * us_filename.h - the rules for the name an upload gets: `${filename}`
 * substitution in the policy key, percent-decoding of what HTTP clients
 * send, and what a stored file name may be (it must never leave the
 * session's storage). Pure.
 */
#ifndef US_FILENAME_H
#define US_FILENAME_H

#include <apr_pools.h>

#define US_NAME_MAX 1024
#define US_META_SUFFIX ".meta.json"

/* A plain file name: 1..1024 bytes (the upload target also keeps its key,
 * prefix and name, within US_KEY_MAX) of valid UTF-8, no '/', '\\', NUL or
 * control characters, not "." or "..". Returns NULL or why not. */
const char *us_filename_problem(const char *name);

/* The filename a multipart part carries: filename* when given (already
 * decoded), else filename with %XX escapes decoded (aiohttp, which the
 * official SDK uses, percent-quotes it). */
const char *us_filename_from_part(apr_pool_t *p, const char *filename,
                                  const char *filename_star);

/* S3 limits an object key to 1024 bytes. */
#define US_KEY_MAX 1024

/* key with every "${filename}" replaced by filename (S3's rule), in one
 * linear pass; NULL when the result would be longer than max_len bytes. */
const char *us_key_substitute(apr_pool_t *p, const char *key, const char *filename,
                              apr_size_t max_len);

/* name percent-encoded for an RFC 5987 ext-value (filename*=UTF-8''...):
 * everything but attr-char is escaped, so no name can end the parameter. */
const char *us_rfc5987_encode(apr_pool_t *p, const char *name);

/* 1 when name is a metadata sidecar (NAME.meta.json, NAME non-empty). */
int us_filename_is_meta(const char *name);

/* name is a text file by its extension (.txt, .md, .csv, .html, .json,
 * ...; case-insensitive): one whose items carry `characters`. */
int us_filename_is_text(const char *name);

#endif
