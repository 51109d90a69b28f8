/* us_range.c - the Range header against a known size (pure). */
#include "us_range.h"

#include <string.h>
#include <strings.h>

/* A range-spec as written: digit spans, an empty one where a side is left
 * out (first: a suffix range `-n`; last: an open one `a-`). */
typedef struct {
    const char *first, *last;
    apr_size_t first_len, last_len;
} range_spec;

static int is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static const char *skip_ows(const char *s, const char *end)
{
    while (s < end && is_ows(*s))
        s++;
    return s;
}

static const char *skip_digits(const char *s, const char *end)
{
    while (s < end && *s >= '0' && *s <= '9')
        s++;
    return s;
}

/* s[0..n), digits, as a number saturated at APR_INT64_MAX: a larger one
 * is past every size as well. */
static apr_int64_t digits_value(const char *s, apr_size_t n)
{
    apr_int64_t v = 0;
    for (apr_size_t i = 0; i < n; i++) {
        int d = s[i] - '0';
        if (v > (APR_INT64_MAX - d) / 10)
            return APR_INT64_MAX;
        v = v * 10 + d;
    }
    return v;
}

/* a > b for digit strings of any length (exact where digits_value saturates). */
static int digits_greater(const char *a, apr_size_t na, const char *b, apr_size_t nb)
{
    for (; na > 1 && *a == '0'; na--)
        a++;
    for (; nb > 1 && *b == '0'; nb--)
        b++;
    if (na != nb)
        return na > nb;
    return memcmp(a, b, na) > 0;
}

/* One range-spec, s[0..end) (no OWS or comma in it): 1 when it is
 * `a-b` with a <= b, `a-` or `-n`. */
static int parse_spec(const char *s, const char *end, range_spec *out)
{
    const char *dash = skip_digits(s, end);
    if (dash == end || *dash != '-' || skip_digits(dash + 1, end) != end)
        return 0;
    out->first = s;
    out->first_len = (apr_size_t)(dash - s);
    out->last = dash + 1;
    out->last_len = (apr_size_t)(end - out->last);
    if (out->first_len == 0 && out->last_len == 0)
        return 0;
    return out->first_len == 0 || out->last_len == 0 ||
           !digits_greater(out->first, out->first_len, out->last, out->last_len);
}

/* A valid spec held against size (RFC 9110, section 14.1.1). */
static us_range_result satisfy(const range_spec *sp, apr_int64_t size, apr_off_t *first,
                               apr_off_t *last)
{
    if (sp->first_len == 0) {
        apr_int64_t n = digits_value(sp->last, sp->last_len);
        if (n == 0)
            return US_RANGE_UNSATISFIABLE;
        /* satisfiable, but no Content-Range can name a range of 0 bytes:
         * the whole (empty) representation */
        if (size == 0)
            return US_RANGE_FULL;
        *first = (apr_off_t)(n < size ? size - n : 0);
        *last = (apr_off_t)(size - 1);
        return US_RANGE_PARTIAL;
    }
    apr_int64_t a = digits_value(sp->first, sp->first_len);
    apr_int64_t b = sp->last_len ? digits_value(sp->last, sp->last_len) : size - 1;
    if (a >= size)
        return US_RANGE_UNSATISFIABLE;
    *first = (apr_off_t)a;
    *last = (apr_off_t)(b < size - 1 ? b : size - 1);
    return US_RANGE_PARTIAL;
}

us_range_result us_range_parse(const char *value, apr_off_t size, apr_off_t *first,
                               apr_off_t *last)
{
    range_spec sp;
    int specs = 0;
    if (!value)
        return US_RANGE_FULL;
    const char *end = value + strlen(value);
    const char *s = skip_ows(value, end);
    while (end > s && is_ows(end[-1]))
        end--;
    /* the unit is case-insensitive; no OWS around '=' */
    if (end - s < 6 || strncasecmp(s, "bytes=", 6) != 0)
        return US_RANGE_FULL;
    /* 1#range-spec: OWS around the commas, empty elements ignored (RFC
     * 9110, section 5.6.1). Several specs are answered with the whole
     * representation, which section 14.2 allows (a server MAY ignore
     * Range): one range is what a download resumes with. */
    for (s += 6;;) {
        const char *e = s;
        while (e < end && *e != ',' && !is_ows(*e))
            e++;
        if (e > s && (++specs > 1 || !parse_spec(s, e, &sp)))
            return US_RANGE_FULL;
        s = skip_ows(e, end);
        if (s == end)
            break;
        if (*s != ',')
            return US_RANGE_FULL;
        s = skip_ows(s + 1, end);
    }
    return specs == 1 ? satisfy(&sp, (apr_int64_t)size, first, last) : US_RANGE_FULL;
}
