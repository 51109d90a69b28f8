/* us_sqlite_instant.c - see us_sqlite_instant.h. */
#include "us_sqlite_instant.h"
#include "us_time.h"

#define USEC_PER_SEC 1000000LL

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

int us_sqlite_instant_parse(const char *s, size_t n, long long *out)
{
    cursor c = { s, n, 0 };
    int y, mo, d, h = 0, mi = 0, sec = 0, zh = 0, zm = 0, sign = 0, ts = 0;
    long long usec = 0;

    if (!number(&c, 4, 1, 9999, &y) || !take(&c, '-') || !number(&c, 2, 1, 12, &mo) ||
        !take(&c, '-') || !number(&c, 2, 1, 31, &d) || d > us_time_days_in_month(y, mo))
        return 0;
    /* between date and time: spaces, at most one T, spaces. PostgreSQL
     * reads a second T as a word of its own (a zone), and digits right
     * after the date as more of the date. */
    size_t date_end = c.i;
    skip_spaces(&c);
    ts = take(&c, 'T') || take(&c, 't'); /* PostgreSQL reads either case */
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
                if (!us_time_fraction_usec(c.s + from, c.i - from, &usec))
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
    long long secs = us_time_days_from_civil(y, mo, d) * 86400LL + h * 3600LL + mi * 60LL + sec -
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
    return sqlite3_create_function_v2(db, "us_instant_us", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC,
                                      NULL, instant_us, NULL, NULL, NULL);
}
