/* us_time.c - API timestamp formatting and parsing (pure). */
#include "us_time.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

void us_time_format(apr_time_t t, char out[US_TS_LEN])
{
    time_t secs = (time_t)(t / APR_USEC_PER_SEC);
    long usec = (long)(t % APR_USEC_PER_SEC);
    struct tm tm;

    if (usec < 0) { /* before 1970: keep the fraction positive */
        usec += APR_USEC_PER_SEC;
        secs -= 1;
    }
    char tmp[96]; /* roomy: the compiler cannot bound struct tm's fields */
    gmtime_r(&secs, &tm);
    snprintf(tmp, sizeof(tmp), "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ",
             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
             tm.tm_min, tm.tm_sec, usec);
    memcpy(out, tmp, US_TS_LEN - 1);
    out[US_TS_LEN - 1] = '\0';
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

/* Days since 1970-01-01 of a proleptic Gregorian date (no timegm() needed). */
static long long days_from_civil(int y, int m, int d)
{
    y -= m <= 2;
    long long era = (y >= 0 ? y : y - 399) / 400;
    long long yoe = y - era * 400;
    long long doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    long long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

int us_time_parse(const char *s, apr_time_t *out)
{
    int y, mo, d, h, mi, sec, usec = 0, off = 0;
    const char *p = s;

    if (!read_digits(&p, 4, &y) || *p++ != '-' || !read_digits(&p, 2, &mo) ||
        *p++ != '-' || !read_digits(&p, 2, &d) || (*p != 'T' && *p != ' '))
        return 0;
    p++;
    if (!read_digits(&p, 2, &h) || *p++ != ':' || !read_digits(&p, 2, &mi) ||
        *p++ != ':' || !read_digits(&p, 2, &sec))
        return 0;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 59)
        return 0;
    if (*p == '.') {
        int scale = 100000, ndigits = 0;
        p++;
        while (*p >= '0' && *p <= '9') {
            if (ndigits++ < 6) {
                usec += (*p - '0') * scale;
                scale /= 10;
            }
            p++;
        }
        if (ndigits == 0)
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
    long long secs = days_from_civil(y, mo, d) * 86400LL + h * 3600 + mi * 60 + sec - off;
    *out = (apr_time_t)secs * APR_USEC_PER_SEC + usec;
    return 1;
}
