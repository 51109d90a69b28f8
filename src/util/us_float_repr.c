/* us_float_repr.c - Python's repr() of a double (us_float_repr.h). */
#include "us_float_repr.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The significant digits of the k-digit decimal mantissa m (no trailing
 * zeros kept) and the decimal exponent of its first digit. */
typedef struct {
    char digits[20];
    int n;   /* digits used */
    int exp; /* d = 0.digits x 10^(exp + 1) */
} decimal;

static int reads_back(unsigned long long m, int e, double d)
{
    char buf[48];
    snprintf(buf, sizeof(buf), "%llue%d", m, e);
    return strtod(buf, NULL) == d;
}

static void set_decimal(decimal *out, unsigned long long m, int e)
{
    char buf[24];
    int n = snprintf(buf, sizeof(buf), "%llu", m);
    while (n > 1 && buf[n - 1] == '0') {
        n--;
        e++;
    }
    memcpy(out->digits, buf, (size_t)n);
    out->n = n;
    out->exp = e + n - 1;
}

/* The shortest decimal that reads back as |d| (> 0, finite), the one
 * nearest d where several of that length do. A double's interval of
 * decimals that read back is narrower than the step between 15-digit
 * decimals, so it holds at most one of those: when one reads back, its
 * digits without the trailing zeros are the shortest. Else 16 digits, else
 * 17 (always enough). A subnormal double has fewer significant bits, and
 * every length from 1 is tried. At each length the correctly rounded mantissa, then
 * its two neighbours, which can read back where it does not (at a power
 * of two the doubles below are twice as close as those above). */
static void shortest(double d, decimal *out)
{
    for (int k = d < DBL_MIN ? 1 : 15; k <= 17; k++) {
        char buf[40];
        snprintf(buf, sizeof(buf), "%.*e", k - 1, d);
        char *e = strchr(buf, 'e');
        int exp10 = atoi(e + 1);
        unsigned long long m = 0;
        for (const char *c = buf; c < e; c++)
            if (*c >= '0' && *c <= '9')
                m = m * 10 + (unsigned long long)(*c - '0');
        int scale = exp10 - (k - 1); /* d ~ m x 10^scale */
        if (reads_back(m, scale, d)) {
            set_decimal(out, m, scale);
            return;
        }
        if (k < 17 && reads_back(m + 1, scale, d)) {
            set_decimal(out, m + 1, scale);
            return;
        }
        if (k < 17 && reads_back(m - 1, scale, d)) {
            set_decimal(out, m - 1, scale);
            return;
        }
    }
    /* 17 digits always read back; not reached */
    set_decimal(out, 0, 0);
}

size_t us_float_repr(double d, char out[US_FLOAT_REPR_MAX])
{
    char *o = out;
    if (!isfinite(d)) {
        out[0] = '\0';
        return 0;
    }
    if (signbit(d))
        *o++ = '-';
    if (d == 0) {
        memcpy(o, "0.0", 4);
        return (size_t)(o - out) + 3;
    }
    decimal x;
    shortest(fabs(d), &x);
    if (x.exp < -4 || x.exp >= 16) {
        *o++ = x.digits[0];
        if (x.n > 1) {
            *o++ = '.';
            memcpy(o, x.digits + 1, (size_t)(x.n - 1));
            o += x.n - 1;
        }
        o += snprintf(o, 8, "e%c%02d", x.exp < 0 ? '-' : '+', abs(x.exp));
        return (size_t)(o - out);
    }
    int point = x.exp + 1; /* digits before the decimal point */
    if (point <= 0) {
        memcpy(o, "0.", 2);
        o += 2;
        memset(o, '0', (size_t)-point);
        o += -point;
        memcpy(o, x.digits, (size_t)x.n);
        o += x.n;
    }
    else if (point < x.n) {
        memcpy(o, x.digits, (size_t)point);
        o += point;
        *o++ = '.';
        memcpy(o, x.digits + point, (size_t)(x.n - point));
        o += x.n - point;
    }
    else {
        memcpy(o, x.digits, (size_t)x.n);
        o += x.n;
        memset(o, '0', (size_t)(point - x.n));
        o += point - x.n;
        memcpy(o, ".0", 2);
        o += 2;
    }
    *o = '\0';
    return (size_t)(o - out);
}
