/* us_crypto.c - SHA-256 and HMAC-SHA256 with a digest fetched once, MD5 (pure). */
#include "us_crypto.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <string.h>

#include <pthread.h>

#define BLOCK 64 /* SHA-256's block size */

static const EVP_MD *md_shared; /* the EVP_MD every thread uses, set once */
static pthread_once_t md_once = PTHREAD_ONCE_INIT;

/* a failed fetch keeps OpenSSL's own lookup: it is tried once */
static void md_fetch(void)
{
    EVP_MD *fetched = EVP_MD_fetch(NULL, "SHA256", NULL);
    md_shared = fetched ? fetched : EVP_sha256();
}

/* The SHA-256 fetched once per process (each EVP_sha256() use would look
 * it up, lock and allocate again). */
static const EVP_MD *sha256_md(void)
{
    pthread_once(&md_once, md_fetch);
    return md_shared;
}

void us_sha256(const void *data, size_t len, unsigned char out[US_SHA256_LEN])
{
    unsigned int outlen = US_SHA256_LEN;
    /* never left undefined: a key's hash is compared with stored ones */
    if (!EVP_Digest(data, len, out, &outlen, sha256_md(), NULL))
        memset(out, 0, US_SHA256_LEN);
}

void us_md5(const void *data, size_t len, unsigned char out[US_MD5_LEN])
{
    unsigned int outlen = US_MD5_LEN;
    if (!EVP_Digest(data, len, out, &outlen, EVP_md5(), NULL))
        memset(out, 0, US_MD5_LEN); /* a wrong Content-MD5: the store refuses the request */
}

/* H(pad XOR key-block || a || b) with one context; 1 on success. */
static int digest2(EVP_MD_CTX *ctx, const unsigned char kblock[BLOCK], unsigned char pad,
                   const void *a, size_t alen, unsigned char out[US_SHA256_LEN])
{
    unsigned char padded[BLOCK];
    unsigned int outlen = US_SHA256_LEN;
    for (int i = 0; i < BLOCK; i++)
        padded[i] = (unsigned char)(kblock[i] ^ pad);
    int ok = EVP_DigestInit_ex(ctx, sha256_md(), NULL) &&
             EVP_DigestUpdate(ctx, padded, BLOCK) &&
             EVP_DigestUpdate(ctx, a, alen) &&
             EVP_DigestFinal_ex(ctx, out, &outlen);
    OPENSSL_cleanse(padded, sizeof(padded));
    return ok;
}

int us_hmac_sha256(const unsigned char *key, size_t keylen, const void *data, size_t len,
                   unsigned char out[US_SHA256_LEN])
{
    unsigned char kblock[BLOCK], inner[US_SHA256_LEN];
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx != NULL;

    /* K0: the key, hashed first when longer than a block, zero-padded */
    memset(kblock, 0, sizeof(kblock));
    if (keylen > BLOCK)
        us_sha256(key, keylen, kblock);
    else if (keylen)
        memcpy(kblock, key, keylen);
    ok = ok && digest2(ctx, kblock, 0x36, data, len, inner);
    ok = ok && digest2(ctx, kblock, 0x5c, inner, sizeof(inner), out);
    if (!ok)
        memset(out, 0, US_SHA256_LEN);
    EVP_MD_CTX_free(ctx);
    OPENSSL_cleanse(kblock, sizeof(kblock));
    OPENSSL_cleanse(inner, sizeof(inner));
    return ok;
}

void us_hex(const unsigned char *in, size_t len, char *out)
{
    static const char HEX[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = HEX[in[i] >> 4];
        out[2 * i + 1] = HEX[in[i] & 0x0F];
    }
    out[2 * len] = '\0';
}

int us_hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int us_hex_byte(const char *s)
{
    int hi = us_hex_value((unsigned char)s[0]);
    int lo = hi < 0 ? -1 : us_hex_value((unsigned char)s[1]);
    return lo < 0 ? -1 : hi * 16 + lo;
}
