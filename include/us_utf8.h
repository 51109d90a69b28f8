/* us_utf8.h - UTF-8 well-formedness, as Unicode table 3-7 defines it:
 * no stray continuation byte, no overlong form, no surrogate, nothing
 * beyond U+10FFFF, no sequence cut short; decoding and encoding of one
 * code point. Pure. */
#ifndef US_UTF8_H
#define US_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Length of the well-formed sequence at s[0..n) (1 for ASCII, NUL
 * included), or 0 when ill-formed; then *bad is the length of its maximal
 * subpart (what one U+FFFD replaces). n >= 1. */
size_t us_utf8_seq(const unsigned char *s, size_t n, size_t *bad);

/* us_utf8_decode's flags: with US_UTF8_SURROGATEPASS, ED A0..BF xx (the
 * surrogates U+D800..DFFF) count as well-formed, as in Python's
 * bytes.decode('utf-8', 'surrogatepass'). */
#define US_UTF8_SURROGATEPASS 1

/* Length of the well-formed sequence at s[0..n) with its code point in
 * *cp, or 0 (*cp untouched) when ill-formed. n >= 1. */
size_t us_utf8_decode(const unsigned char *s, size_t n, int flags, uint32_t *cp);

/* Writes cp (at most U+10FFFF; a surrogate is written as its three bytes)
 * to out and returns how many bytes that took (1 to 4). */
size_t us_utf8_encode(uint32_t cp, unsigned char out[4]);

/* s[0..n) is well-formed UTF-8 (it may hold NULs). */
int us_utf8_valid_n(const char *s, size_t n);

/* bytes.decode("utf-8", "replace") as CPython does it: s[0..n) into out
 * (room for 3 * n + 1 bytes), each maximal ill-formed subpart as one
 * U+FFFD, NUL-terminated; returns the length written. */
size_t us_utf8_replace(const char *s, size_t n, char *out);

/* The NUL-terminated s is well-formed UTF-8; 0 for NULL. */
int us_utf8_valid(const char *s);

/* Counts the code points of a text that arrives in pieces (a sequence may
 * be split between two pieces). Zero-initialise, feed every piece in
 * order, then ask us_utf8_count_end. */
typedef struct {
    unsigned char pend[4]; /* the start of a sequence the last piece cut */
    size_t npend;
    long long chars;
    int bad;               /* ill-formed: stays so */
} us_utf8_counter;

void us_utf8_count(us_utf8_counter *c, const char *data, size_t n);
/* The number of code points (Python's len of the decoded str), or -1
 * when the text is not well-formed UTF-8 (a sequence cut at the end too). */
long long us_utf8_count_end(const us_utf8_counter *c);

#endif
