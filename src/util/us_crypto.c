/* us_crypto.c - SHA-256 and HMAC-SHA256 with a digest fetched once (pure). */
#include "us_crypto.h"

#include <stdint.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <string.h>

#include <apr_atomic.h>

#define BLOCK 64 /* SHA-256's block size */

static volatile void *md_shared; /* the EVP_MD every thread uses, once published */

/* The fetched SHA-256, or OpenSSL's own lookup if the fetch failed. The
 * first callers may fetch it concurrently: one publishes its copy, the
 * others free theirs. */
static const EVP_MD *sha256_md(void)
{
    void *md = apr_atomic_casptr(&md_shared, NULL, NULL);
    if (md)
        return md;
    EVP_MD *fetched = EVP_MD_fetch(NULL, "SHA256", NULL);
    /* a failed fetch publishes the static lookup: it is tried once */
    void *mine = fetched ? (void *)fetched : (void *)(uintptr_t)EVP_sha256();
    md = apr_atomic_casptr(&md_shared, mine, NULL);
    if (!md)
        return mine;
    EVP_MD_free(fetched);
    return md;
}

void us_sha256(const void *data, size_t len, unsigned char out[US_SHA256_LEN])
{
    unsigned int outlen = US_SHA256_LEN;
    EVP_Digest(data, len, out, &outlen, sha256_md(), NULL);
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
