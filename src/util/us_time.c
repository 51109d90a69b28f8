/* us_time.c - API timestamp formatting and parsing (pure). */
#include "us_time.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Years outside 0000-9999, which us_time_format does not write digit by
 * digit: what %04d writes there. */
static void format_stdio(time_t secs, long usec, char out[US_TS_LEN])
{
    struct tm tm;
    char tmp[96]; /* roomy: the compiler cannot bound struct tm's fields */
    gmtime_r(&secs, &tm);
    snprintf(tmp, sizeof(tmp), "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ",
             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
             tm.tm_min, tm.tm_sec, usec);
    memcpy(out, tmp, US_TS_LEN - 1);
    out[US_TS_LEN - 1] = '\0';
}

/* The proleptic Gregorian date of a day number since 1970-01-01
 * (the inverse of us_time_days_from_civil below). */
static void civil_from_days(long long z, int *y, int *m, int *d)
{
    z += 719468;
    long long era = (z >= 0 ? z : z - 146096) / 146097;
    long long doe = z - era * 146097;
    long long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    long long doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    long long mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)(yoe + era * 400 + (*m <= 2));
}

/* v as exactly n decimal digits (v < 10^n) ending just before end. */
static void put_digits(char *end, long v, int n)
{
    for (int i = 1; i <= n; i++, v /= 10)
        end[-i] = (char)('0' + v % 10);
}

#define SECS_0000 (-62167219200LL)    /* 0000-01-01T00:00:00Z */
#define SECS_10000 (253402300800LL)   /* 10000-01-01T00:00:00Z */

void us_time_format(apr_time_t t, char out[US_TS_LEN])
{
    long long secs = t / APR_USEC_PER_SEC;
    long usec = (long)(t % APR_USEC_PER_SEC);
    int y, mo, d;

    if (usec < 0) { /* before 1970: keep the fraction positive */
        usec += APR_USEC_PER_SEC;
        secs -= 1;
    }
    if (secs < SECS_0000 || secs >= SECS_10000) {
        format_stdio((time_t)secs, usec, out);
        return;
    }
    /* no stdio: this runs for every timestamp of every answer */
    long long days = (secs >= 0 ? secs : secs - 86399) / 86400;
    long sod = (long)(secs - days * 86400);
    civil_from_days(days, &y, &mo, &d);
    memcpy(out, "0000-00-00T00:00:00.000000Z", US_TS_LEN);
    put_digits(out + 4, y, 4);
    put_digits(out + 7, mo, 2);
    put_digits(out + 10, d, 2);
    put_digits(out + 13, sod / 3600, 2);
    put_digits(out + 16, sod / 60 % 60, 2);
    put_digits(out + 19, sod % 60, 2);
    put_digits(out + 26, usec, 6);
}

/* Reads exactly n decimal digits. */
static int read_digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9')
            return 0;
        v = v * 10 + (c - '0');
    }
    *p += n;
    *out = v;
    return 1;
}

long long us_time_days_from_civil(int y, int m, int d)
{
    y -= m <= 2;
    long long era = (y >= 0 ? y : y - 399) / 400;
    long long yoe = y - era * 400;
    long long doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    long long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

int us_time_days_in_month(int y, int m)
{
    static const int DAYS[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    int leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    return DAYS[m - 1] + (m == 2 && leap);
}

/* more digits than this are read from the heap */
#define FRACTION_STACK_DIGITS 64

/* x >= 0 to the nearest integer, ties to even (rint's default mode;
 * x - its integer part is exact) */
static long long round_even(double x)
{
    long long t = (long long)x;
    double r = x - (double)t;
    return t + (r > 0.5 || (r == 0.5 && (t & 1)));
}

/* Written as "De-k", strtod reads the fraction the same in every locale
 * (no radix character). */
int us_time_fraction_usec(const char *d, size_t k, long long *out)
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

int us_time_parse(const char *s, apr_time_t *out)
{
    int y, mo, d, h, mi, sec, off = 0;
    long long usec = 0;
    const char *p = s;

    if (!read_digits(&p, 4, &y) || *p++ != '-' || !read_digits(&p, 2, &mo) ||
        *p++ != '-' || !read_digits(&p, 2, &d) || (*p != 'T' && *p != ' '))
        return 0;
    p++;
    if (!read_digits(&p, 2, &h) || *p++ != ':' || !read_digits(&p, 2, &mi) ||
        *p++ != ':' || !read_digits(&p, 2, &sec))
        return 0;
    if (mo < 1 || mo > 12 || d < 1 || d > us_time_days_in_month(y, mo) || h > 23 || mi > 59 ||
        sec > 59)
        return 0;
    if (*p == '.') {
        const char *from = ++p;
        while (*p >= '0' && *p <= '9')
            p++;
        if (p == from || !us_time_fraction_usec(from, (size_t)(p - from), &usec))
            return 0;
    }
    if (*p == 'Z' || *p == 'z') {
        p++;
    }
    else if (*p == '+' || *p == '-') {
        int sign = *p++ == '-' ? -1 : 1, oh, om;
        if (!read_digits(&p, 2, &oh) || *p++ != ':' || !read_digits(&p, 2, &om))
            return 0;
        off = sign * (oh * 3600 + om * 60);
    }
    else {
        return 0;
    }
    if (*p != '\0')
        return 0;
    long long secs = us_time_days_from_civil(y, mo, d) * 86400LL + h * 3600 + mi * 60 + sec - off;
    *out = (apr_time_t)secs * APR_USEC_PER_SEC + usec;
    return 1;
}
