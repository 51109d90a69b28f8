/* us_sqlite_instant.c - see us_sqlite_instant.h. */
#include "us_sqlite_instant.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define USEC_PER_SEC 1000000LL
/* more digits than this are read from the heap: any number may decide
 * the rounding */
#define FRACTION_STACK_DIGITS 64

typedef struct {
    const char *s;
    size_t n, i;
} cursor;

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static void skip_spaces(cursor *c)
{
    while (c->i < c->n && is_space(c->s[c->i]))
        c->i++;
}

/* exactly width digits, value within [min, max] */
static int number(cursor *c, int width, int min, int max, int *out)
{
    int v = 0;
    if (c->n - c->i < (size_t)width)
        return 0;
    for (int k = 0; k < width; k++) {
        char d = c->s[c->i + k];
        if (!is_digit(d))
            return 0;
        v = v * 10 + (d - '0');
    }
    if (v < min || v > max)
        return 0;
    c->i += (size_t)width;
    *out = v;
    return 1;
}

static int take(cursor *c, char ch)
{
    if (c->i < c->n && c->s[c->i] == ch) {
        c->i++;
        return 1;
    }
    return 0;
}

static int days_in_month(int y, int m)
{
    static const int DAYS[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    int leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    return DAYS[m - 1] + (m == 2 && leap);
}

/* Days since 1970-01-01 of a proleptic Gregorian date. */
static long long days_from_civil(int y, int m, int d)
{
    y -= m <= 2;
    long long era = (y >= 0 ? y : y - 399) / 400;
    long long yoe = y - era * 400;
    long long doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    long long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* x >= 0 to the nearest integer, ties to even (rint's default mode;
 * x - its integer part is exact) */
static long long round_even(double x)
{
    long long t = (long long)x;
    double r = x - (double)t;
    return t + (r > 0.5 || (r == 0.5 && (t & 1)));
}

/* The fraction's digits d[0..k) in microseconds the way PostgreSQL
 * rounds them: the nearest double to 0.d, times 1e6, to the nearest
 * integer (ties to even). Written as "De-k", strtod reads it the same in
 * every locale (no radix character). */
static int fraction_usec(const char *d, size_t k, long long *out)
{
    char small[FRACTION_STACK_DIGITS + 24];
    char *buf = small;
    if (k > FRACTION_STACK_DIGITS && !(buf = malloc(k + 24)))
        return 0;
    memcpy(buf, d, k);
    /* k <= the value's length, itself an int */
    (void)snprintf(buf + k, 24, "e-%lu", (unsigned long)k);
    double frac = strtod(buf, NULL);
    if (buf != small)
        free(buf);
    *out = round_even(frac * 1e6);
    return 1;
}

int us_sqlite_instant_parse(const char *s, size_t n, long long *out)
{
    cursor c = { s, n, 0 };
    int y, mo, d, h = 0, mi = 0, sec = 0, zh = 0, zm = 0, sign = 0, ts = 0;
    long long usec = 0;

    if (!number(&c, 4, 1, 9999, &y) || !take(&c, '-') || !number(&c, 2, 1, 12, &mo) ||
        !take(&c, '-') || !number(&c, 2, 1, 31, &d) || d > days_in_month(y, mo))
        return 0;
    /* between date and time: spaces, at most one T, spaces. PostgreSQL
     * reads a second T as a word of its own (a zone), and digits right
     * after the date as more of the date. */
    size_t date_end = c.i;
    skip_spaces(&c);
    ts = take(&c, 'T');
    skip_spaces(&c);
    if (c.i == c.n) {
        if (ts) /* a T that no time follows */
            return 0;
    } else {
        if (c.i == date_end)
            return 0;
        if (!number(&c, 2, 0, 24, &h) || !take(&c, ':') || !number(&c, 2, 0, 59, &mi))
            return 0;
        if (take(&c, ':')) {
            if (!number(&c, 2, 0, 60, &sec)) /* 60: PostgreSQL's leap second, the next minute */
                return 0;
            if (c.i + 1 < c.n && c.s[c.i] == '.' && is_digit(c.s[c.i + 1])) {
                size_t from = ++c.i;
                while (c.i < c.n && is_digit(c.s[c.i]))
                    c.i++;
                if (!fraction_usec(c.s + from, c.i - from, &usec))
                    return 0;
            }
        }
        if ((h == 24 && (mi || sec || usec)) || (sec == 60 && usec))
            return 0;
        skip_spaces(&c);
        if (take(&c, 'Z') || take(&c, 'z')) {
            sign = 0;
        } else if (c.i < c.n && (c.s[c.i] == '+' || c.s[c.i] == '-')) {
            sign = c.s[c.i++] == '-' ? -1 : 1;
            if (!number(&c, 2, 0, 15, &zh))
                return 0;
            /* +HH, +HHMM or +HH:MM */
            if (take(&c, ':') ? !number(&c, 2, 0, 59, &zm)
                              : c.i < c.n && is_digit(c.s[c.i]) && !number(&c, 2, 0, 59, &zm))
                return 0;
        }
        skip_spaces(&c);
        if (c.i != c.n)
            return 0;
    }
    long long secs = days_from_civil(y, mo, d) * 86400LL + h * 3600LL + mi * 60LL + sec -
                     sign * (zh * 3600LL + zm * 60LL);
    *out = secs * USEC_PER_SEC + usec;
    return 1;
}

static void instant_us(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    long long v;
    (void)argc;
    if (sqlite3_value_type(argv[0]) != SQLITE_TEXT) {
        sqlite3_result_null(ctx);
        return;
    }
    const char *s = (const char *)sqlite3_value_text(argv[0]);
    int n = sqlite3_value_bytes(argv[0]);
    if (s && us_sqlite_instant_parse(s, (size_t)n, &v))
        sqlite3_result_int64(ctx, v);
    else
        sqlite3_result_null(ctx);
}

int us_sqlite_instant_register(sqlite3 *db)
{
    return sqlite3_create_function_v2(db, "us_instant_us", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL,
                                      instant_us, NULL, NULL, NULL);
}
