/* us_utf8.c - UTF-8 well-formedness (Unicode table 3-7), decoding and encoding. */
#include "us_utf8.h"

#include <string.h>

/* The sequence at s[0..n): its length and code point, or 0 with *bad the
 * length of its maximal subpart. */
static size_t seq(const unsigned char *s, size_t n, int flags, size_t *bad, uint32_t *cp)
{
    unsigned char c = s[0];
    size_t need;
    uint32_t v;
    unsigned char lo = 0x80, hi = 0xBF;

    *bad = 1;
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xC2 && c <= 0xDF) {
        need = 1;
        v = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 2;
        v = c & 0x0F;
        if (c == 0xE0)
            lo = 0xA0; /* overlong below U+0800 */
        else if (c == 0xED && !(flags & US_UTF8_SURROGATEPASS))
            hi = 0x9F; /* U+D800..DFFF */
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 3;
        v = c & 0x07;
        if (c == 0xF0)
            lo = 0x90; /* overlong below U+10000 */
        else if (c == 0xF4)
            hi = 0x8F; /* above U+10FFFF */
    } else
        return 0;
    for (size_t i = 1; i <= need; i++) {
        if (i >= n || s[i] < lo || s[i] > hi) {
            *bad = i;
            return 0;
        }
        v = (v << 6) | (s[i] & 0x3F);
        lo = 0x80;
        hi = 0xBF;
    }
    *cp = v;
    return need + 1;
}

size_t us_utf8_seq(const unsigned char *s, size_t n, size_t *bad)
{
    uint32_t cp;
    return seq(s, n, 0, bad, &cp);
}

size_t us_utf8_decode(const unsigned char *s, size_t n, int flags, uint32_t *cp)
{
    size_t bad;
    return seq(s, n, flags, &bad, cp);
}

size_t us_utf8_encode(uint32_t cp, unsigned char out[4])
{
    if (cp < 0x80) {
        out[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (unsigned char)(0xC0 | (cp >> 6));
        out[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (unsigned char)(0xE0 | (cp >> 12));
        out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (unsigned char)(0xF0 | (cp >> 18));
    out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
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

size_t us_utf8_replace(const char *s, size_t n, char *out)
{
    size_t i = 0, o = 0, bad, k;

    while (i < n) {
        if ((k = us_utf8_seq((const unsigned char *)s + i, n - i, &bad)) != 0) {
            memcpy(out + o, s + i, k);
            o += k;
            i += k;
        }
        else {
            memcpy(out + o, "\xEF\xBF\xBD", 3);
            o += 3;
            i += bad;
        }
    }
    out[o] = '\0';
    return o;
}

int us_utf8_valid(const char *s)
{
    return s && us_utf8_valid_n(s, strlen(s));
}

/* How many bytes the sequence led by b takes; 1 for a byte that leads none. */
static size_t seq_need(unsigned char b)
{
    return b < 0xC2 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : b < 0xF5 ? 4 : 1;
}

void us_utf8_count(us_utf8_counter *c, const char *data, size_t n)
{
    const unsigned char *s = (const unsigned char *)data;
    size_t i = 0, k, bad;

    while (!c->bad && c->npend && i < n) { /* complete the cut sequence first */
        c->pend[c->npend++] = s[i++];
        if (us_utf8_seq(c->pend, c->npend, &bad)) {
            c->chars++;
            c->npend = 0;
        }
        else if (bad != c->npend || c->npend >= seq_need(c->pend[0])) {
            c->bad = 1;
        }
    }
    while (!c->bad && i < n) {
        if (s[i] < 0x80) {
            c->chars++;
            i++;
            continue;
        }
        if ((k = us_utf8_seq(s + i, n - i, &bad))) {
            c->chars++;
            i += k;
        }
        else if (bad == n - i && n - i < seq_need(s[i])) { /* cut by the end of the piece */
            memcpy(c->pend, s + i, n - i);
            c->npend = n - i;
            i = n;
        }
        else {
            c->bad = 1;
        }
    }
}

long long us_utf8_count_end(const us_utf8_counter *c)
{
    return c->bad || c->npend ? -1 : c->chars;
}
