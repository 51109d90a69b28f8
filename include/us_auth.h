/*
 * us_auth.h - API keys: the key file, hashed keys, users and workspace
 * grants. Pure: APR pools + OpenSSL.
 *
 * Key file: one key per line, `#` comments and blank lines ignored:
 *   <sha256 hex of the key>:<user_id uuid>:<given_name>:<family_name>:<grants>
 * optionally followed by three more fields (us-keygen writes all eight):
 *   ...:<label>:<created>:<expires>
 * grants is `*` (every workspace) or a comma-separated list of names.
 * Names and the label must be valid UTF-8 and may not contain ':' or
 * control characters; the label may be empty. created and expires are UTC
 * instants as YYYYMMDDTHHMMSSZ (no ':'), or empty: unknown / never.
 * A key's id is the first 12 hex digits of its SHA-256 (field 1).
 */
#ifndef US_AUTH_H
#define US_AUTH_H

#include "us_crypto.h" /* us_sha256, US_SHA256_LEN */

#include <apr_pools.h>
#include <apr_tables.h>
#include <apr_time.h>
#include <stddef.h>

#define US_KEY_ID_LEN 12

typedef struct {
    unsigned char digest[US_SHA256_LEN];
    const char *user_id;
    const char *given_name;
    const char *family_name;
    int all_workspaces;
    apr_array_header_t *workspaces; /* const char * */
    char id[US_KEY_ID_LEN + 1];     /* first hex digits of the SHA-256 */
    const char *label;              /* "" when none */
    apr_time_t created;             /* 0: not recorded */
    apr_time_t expires;             /* 0: never */
} us_key;

typedef struct {
    apr_array_header_t *keys; /* us_key */
} us_keyring;

/* Parses a key file's text. Returns 1, or 0 with "line N: why" in err. */
int us_keyring_parse(apr_pool_t *p, const char *text, size_t len,
                     us_keyring **out, char *err, size_t errlen);

/* Reads and parses the file at path; 0 with a message in err on failure. */
int us_keyring_load(apr_pool_t *p, const char *path, us_keyring **out,
                    char *err, size_t errlen);

/* The key whose hash matches `presented`, or NULL. Compares against every
 * entry in constant time so timing reveals nothing about which matched. */
const us_key *us_keyring_lookup(const us_keyring *kr, const char *presented);

int us_key_grants(const us_key *k, const char *workspace);

/* Whether k has expired at now (refused like an unknown key). */
int us_key_expired(const us_key *k, apr_time_t now);

/* YYYYMMDDTHHMMSSZ <-> apr_time_t (whole seconds, UTC); parse: 1 or 0. */
int us_key_time_parse(const char *s, apr_time_t *out);
void us_key_time_format(apr_time_t t, char out[17]);

/* A free-text field (given/family name) allowed in the key file:
 * non-empty valid UTF-8 without ':' or control characters. */
int us_key_field_valid(const char *s);

/* The key-file line (with trailing newline) for a new key: the five
 * fields of the first format. */
char *us_key_line(apr_pool_t *p, const char *key, const char *user_id,
                  const char *given, const char *family, const char *grants);

/* The same with label ("" none), created and expires (0: none): eight fields. */
char *us_key_line_full(apr_pool_t *p, const char *key, const char *user_id,
                       const char *given, const char *family, const char *grants,
                       const char *label, apr_time_t created, apr_time_t expires);

/* A label allowed in the key file: empty, or what us_key_field_valid takes. */
int us_key_label_valid(const char *s);

/* text without the key lines whose id or label is `which` (comments, blank
 * lines and every other line kept byte for byte); *removed counts them.
 * text must parse (us_keyring_parse). */
char *us_keyfile_without(apr_pool_t *p, const char *text, size_t len, const char *which,
                         int *removed);

/* Replaces the file at path with text atomically: a temporary file in the
 * same directory with the mode and owner of the file it replaces (0600 and
 * ours when there is none), written, fsynced, renamed over path, and the
 * directory fsynced. 0, or -1 with errno set. */
int us_keyfile_replace(const char *path, const char *text, size_t len);

/* Extracts the token of an "Authorization: Bearer <token>" header value;
 * NULL when absent or not a Bearer credential. */
const char *us_bearer_token(apr_pool_t *p, const char *header);

#endif
