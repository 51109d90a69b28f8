/* us_utf8.c - UTF-8 well-formedness (Unicode table 3-7). */
#include "us_utf8.h"

#include <string.h>

size_t us_utf8_seq(const unsigned char *s, size_t n, size_t *bad)
{
    unsigned char c = s[0];
    size_t need;
    unsigned char lo = 0x80, hi = 0xBF;

    *bad = 1;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        need = 1;
    else if (c >= 0xE0 && c <= 0xEF) {
        need = 2;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED) /* no surrogates */
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 3;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else
        return 0;
    for (size_t i = 1; i <= need; i++) {
        if (i >= n || s[i] < lo || s[i] > hi) {
            *bad = i;
            return 0;
        }
        lo = 0x80;
        hi = 0xBF;
    }
    return need + 1;
}

int us_utf8_valid_n(const char *s, size_t n)
{
    size_t i = 0, bad, k;

    while (i < n) {
        if (!(k = us_utf8_seq((const unsigned char *)s + i, n - i, &bad)))
            return 0;
        i += k;
    }
    return 1;
}

int us_utf8_valid(const char *s)
{
    return s && us_utf8_valid_n(s, strlen(s));
}
