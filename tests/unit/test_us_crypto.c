/* Unit tests: SHA-256 and HMAC-SHA256 (RFC 4231 vectors, and OpenSSL's
 * own HMAC() on keys and messages of every length around the block). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include "fixture.h"
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include "us_crypto.h"

static void hex(const unsigned char *b, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", b[i]);
}

static void check_hmac(const void *key, size_t keylen, const void *data, size_t len,
                       const char *want_hex)
{
    unsigned char mac[US_SHA256_LEN];
    char got[65];
    assert_int_equal(us_hmac_sha256(key, keylen, data, len, mac), 1);
    hex(mac, sizeof(mac), got);
    assert_string_equal(got, want_hex);
}

static void test_rfc4231(void **state)
{
    unsigned char k20[20], k131[131], d50[50];
    (void)state;
    memset(k20, 0x0b, sizeof(k20));
    check_hmac(k20, 20, "Hi There", 8,
               "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
    check_hmac("Jefe", 4, "what do ya want for nothing?", 28,
               "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    memset(k20, 0xaa, sizeof(k20));
    memset(d50, 0xdd, sizeof(d50));
    check_hmac(k20, 20, d50, 50,
               "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe");
    memset(k131, 0xaa, sizeof(k131)); /* longer than a block: hashed first */
    check_hmac(k131, 131, "Test Using Larger Than Block-Size Key - Hash Key First", 54,
               "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
    const char *long_msg = "This is a test using a larger than block-size key and a larger "
                           "than block-size data. The key needs to be hashed before being "
                           "used by the HMAC algorithm.";
    check_hmac(k131, 131, long_msg, strlen(long_msg),
               "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2");
}

/* xorshift64*: the same bytes on every run */
static uint64_t rng = 0x2545F4914F6CDD1DULL;
static unsigned char rnd_byte(void)
{
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return (unsigned char)((rng * 0x2545F4914F6CDD1DULL) >> 56);
}

static void test_agrees_with_openssl_hmac(void **state)
{
    unsigned char key[200], data[300], want[EVP_MAX_MD_SIZE], got[US_SHA256_LEN];
    unsigned int wantlen = 0;
    (void)state;
    for (size_t keylen = 0; keylen < sizeof(key); keylen += 7) {
        for (size_t len = 0; len < sizeof(data); len += 13) {
            for (size_t i = 0; i < keylen; i++)
                key[i] = rnd_byte();
            for (size_t i = 0; i < len; i++)
                data[i] = rnd_byte();
            HMAC(EVP_sha256(), key, (int)keylen, data, len, want, &wantlen);
            assert_int_equal(us_hmac_sha256(key, keylen, data, len, got), 1);
            assert_int_equal(wantlen, US_SHA256_LEN);
            assert_memory_equal(got, want, US_SHA256_LEN);
        }
    }
}

static void test_sha256(void **state)
{
    unsigned char d[US_SHA256_LEN];
    char h[65];
    (void)state;
    us_sha256("abc", 3, d);
    hex(d, sizeof(d), h);
    assert_string_equal(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    us_sha256("", 0, d);
    hex(d, sizeof(d), h);
    assert_string_equal(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

/* The hex digits of the percent escapes (path, query, form and filename
 * decoders): either case, and nothing else; the second digit is read only
 * after a first. */
static void test_hex_digits(void **state)
{
    (void)state;
    for (int c = 0; c < 256; c++) {
        int want = c >= '0' && c <= '9' ? c - '0'
                 : c >= 'a' && c <= 'f' ? c - 'a' + 10
                 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        assert_int_equal(us_hex_value((unsigned char)c), want);
    }
    assert_int_equal(us_hex_byte("41"), 0x41);
    assert_int_equal(us_hex_byte("fF"), 0xff);
    assert_int_equal(us_hex_byte("00"), 0);
    assert_int_equal(us_hex_byte("4g"), -1);
    assert_int_equal(us_hex_byte("g4"), -1);
    assert_int_equal(us_hex_byte("4"), -1);  /* the NUL ends it */
    assert_int_equal(us_hex_byte(""), -1);   /* s[1] not read */
    assert_int_equal(us_hex_byte("\xc3\xa9"), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc4231),
        cmocka_unit_test(test_agrees_with_openssl_hmac),
        cmocka_unit_test(test_sha256),
        cmocka_unit_test(test_hex_digits),
    };
    return fixture_run("us_crypto", tests, NULL, NULL);
}
