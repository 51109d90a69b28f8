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

/* A plain file name: 1..1024 bytes of valid UTF-8, no '/', '\\', NUL or
 * control characters, not "." or "..". Returns NULL or why not. */
const char *us_filename_problem(const char *name);

/* The name a file uploaded into a session gets from its multipart part
 * (or a direct upload from its key): filename* when given (already
 * decoded), else filename with %XX escapes decoded, as the official SDK's
 * aiohttp percent-quotes it - unless decoding makes it a name no file may
 * have ("a%2Fb") while the name as sent is one: then the name as sent, so
 * every upload path keeps such a file under one name and none is refused
 * for it. */
const char *us_filename_from_part(apr_pool_t *p, const char *filename,
                                  const char *filename_star);

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
