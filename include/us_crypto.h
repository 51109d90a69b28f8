/*
 * us_crypto.h - SHA-256 and HMAC-SHA256 without OpenSSL 3's per-call
 * algorithm lookups: the digest is fetched once per process (EVP_sha256()
 * and HMAC() look it up, lock and allocate on every call); MD5 for S3's
 * Content-MD5. Pure: OpenSSL and APR atomics.
 */
#ifndef US_CRYPTO_H
#define US_CRYPTO_H

#include <stddef.h>

#define US_SHA256_LEN 32
#define US_MD5_LEN 16

/* out = SHA-256(data[0..len)). */
void us_sha256(const void *data, size_t len, unsigned char out[US_SHA256_LEN]);

/* out = MD5(data[0..len)): only where a protocol asks for it (S3's
 * Content-MD5), never for anything that must resist collisions. */
void us_md5(const void *data, size_t len, unsigned char out[US_MD5_LEN]);

/* out = HMAC-SHA256(key, data) (RFC 2104); 1, or 0 (out zeroed) when
 * OpenSSL failed (out of memory). */
int us_hmac_sha256(const unsigned char *key, size_t keylen, const void *data, size_t len,
                   unsigned char out[US_SHA256_LEN]);

/* in[0..len) as lower-case hex into out (2 * len characters + NUL). */
void us_hex(const unsigned char *in, size_t len, char *out);

/* The value of the hex digit c (either case), or -1. */
int us_hex_value(unsigned char c);

/* The byte the two hex digits at s spell ("%XY" escapes: s points at X),
 * or -1; s[1] is read only when s[0] is a digit. */
int us_hex_byte(const char *s);

#endif
