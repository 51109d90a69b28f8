/* us_utf8.h - UTF-8 well-formedness, as Unicode table 3-7 defines it:
 * no stray continuation byte, no overlong form, no surrogate, nothing
 * beyond U+10FFFF, no sequence cut short. Pure. */
#ifndef US_UTF8_H
#define US_UTF8_H

#include <stddef.h>

/* Length of the well-formed sequence at s[0..n) (1 for ASCII, NUL
 * included), or 0 when ill-formed; then *bad is the length of its maximal
 * subpart (what one U+FFFD replaces). n >= 1. */
size_t us_utf8_seq(const unsigned char *s, size_t n, size_t *bad);

/* s[0..n) is well-formed UTF-8 (it may hold NULs). */
int us_utf8_valid_n(const char *s, size_t n);

/* The NUL-terminated s is well-formed UTF-8; 0 for NULL. */
int us_utf8_valid(const char *s);

#endif
