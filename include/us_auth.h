/*
 * us_auth.h - API keys: the key file, hashed keys, users and workspace
 * grants. Pure: APR pools + OpenSSL.
 *
 * Key file: one key per line, `#` comments and blank lines ignored:
 *   <sha256 hex of the key>:<user_id uuid>:<given_name>:<family_name>:<grants>
 * grants is `*` (every workspace) or a comma-separated list of names.
 * Names must be valid UTF-8 and may not contain ':' or control characters.
 */
#ifndef US_AUTH_H
#define US_AUTH_H

#include "us_crypto.h" /* us_sha256, US_SHA256_LEN */

#include <apr_pools.h>
#include <apr_tables.h>
#include <stddef.h>

typedef struct {
    unsigned char digest[US_SHA256_LEN];
    const char *user_id;
    const char *given_name;
    const char *family_name;
    int all_workspaces;
    apr_array_header_t *workspaces; /* const char * */
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

/* A free-text field (given/family name) allowed in the key file:
 * non-empty valid UTF-8 without ':' or control characters. */
int us_key_field_valid(const char *s);

/* The key-file line (with trailing newline) for a new key. */
char *us_key_line(apr_pool_t *p, const char *key, const char *user_id,
                  const char *given, const char *family, const char *grants);

/* Extracts the token of an "Authorization: Bearer <token>" header value;
 * NULL when absent or not a Bearer credential. */
const char *us_bearer_token(apr_pool_t *p, const char *header);

#endif
