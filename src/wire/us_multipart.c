/*
 * us_multipart.c - a streaming multipart/form-data parser (RFC 7578, RFC 2046).
 *
 * The body is a sequence of
 *
 *     [preamble] "--" boundary padding CRLF
 *     headers CRLF CRLF data  CRLF "--" boundary padding CRLF
 *     headers CRLF CRLF data  CRLF "--" boundary "--" [epilogue]
 *
 * The parser is a byte-driven state machine (enum mp_state below); us_mp_feed
 * hands each state as many bytes as it can take at once.
 *
 * Finding the delimiter ("\r\n--" boundary) in part data without copying:
 * the data is scanned for CR; every CR is compared with the delimiter. Bytes
 * that cannot start a delimiter go straight to part_data from the caller's
 * buffer. When the input ends inside a possible delimiter, only the count of
 * delimiter bytes matched so far is kept (mp->match): the bytes held back are
 * by definition delim[0..match), so they need no buffer of their own, and
 * when the match fails they are passed on from mp->delim. As the delimiter
 * holds a CR only at its first position, a failed match can only restart at
 * the failing byte itself - no KMP-style table is needed.
 */
#include "us_multipart.h"
#include "us_crypto.h"

#include <apr_strings.h>
#include <string.h>

enum mp_state {
    ST_PREAMBLE,    /* before the first delimiter: bytes are discarded */
    ST_AFTER_DELIM, /* just after "--boundary": "--" closes, else padding, line end */
    ST_PADDING,     /* transport padding (SP / HT) before the line end */
    ST_DELIM_CR,    /* CR after the boundary (and padding): LF must follow */
    ST_CLOSE_DASH,  /* one '-' of the closing "--" seen */
    ST_HEADERS,     /* collecting one part's header block */
    ST_DATA         /* streaming a part's data, looking for the delimiter */
};

struct us_mp {
    us_mp_callbacks cb;
    void *ctx;
    apr_pool_t *part_pool;  /* the current part's strings, cleared per part */
    us_mp_part part;
    enum mp_state state;
    us_mp_status status;
    const char *error;
    char delim[4 + US_MP_MAX_BOUNDARY]; /* "\r\n--" boundary, no NUL */
    size_t dlen;
    size_t match;           /* delim bytes matched at the end of the input so far */
    int part_open;          /* part_begin called, part_end not yet */
    size_t hdr_len;         /* bytes in hdr */
    size_t line_start;      /* offset in hdr of the header line being read */
    char hdr[US_MP_MAX_HEADER];
};

/* ---- small character helpers ------------------------------------------ */

static int is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* RFC 7230 tchar */
static int is_tchar(char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return 1;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* RFC 2046 bchars minus space (checked separately: allowed but not last) */
static int is_bchar_nospace(char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return 1;
    return c != '\0' && strchr("'()+_,-./:=?", c) != NULL;
}

static int is_ctl(char c)
{
    unsigned char u = (unsigned char)c;
    return (u < 0x20 && c != '\t') || u == 0x7f;
}

static char ascii_lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* s[0..n) equals the lowercase literal lit, ignoring ASCII case. */
static int ci_equal(const char *s, size_t n, const char *lit)
{
    if (strlen(lit) != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (ascii_lower(s[i]) != lit[i])
            return 0;
    return 1;
}

static int boundary_valid(const char *b)
{
    size_t n = b ? strlen(b) : 0;
    if (n < 1 || n > US_MP_MAX_BOUNDARY || b[n - 1] == ' ')
        return 0;
    for (size_t i = 0; i < n; i++)
        if (b[i] != ' ' && !is_bchar_nospace(b[i]))
            return 0;
    return 1;
}

/* ---- header value parsing: "type *( ; name=value )" ------------------- */

typedef struct {
    const char *p, *end;
} cursor;

static void skip_ows(cursor *c)
{
    while (c->p < c->end && is_ows(*c->p))
        c->p++;
}

/* Reads 1*tchar; returns its length (0: none). */
static size_t read_token(cursor *c, const char **tok)
{
    *tok = c->p;
    while (c->p < c->end && is_tchar(*c->p))
        c->p++;
    return (size_t)(c->p - *tok);
}

/* A quoted-string after its opening quote. Only \" and \\ are taken as
 * escapes: browsers send backslashes unescaped ("C:\dir\f.txt"), while
 * httpx/curl escape '\' and '"' - this reading serves both. The string is
 * measured before it is copied: a header with many quoted parameters costs
 * what it holds, not a copy of the rest of the line per parameter. */
static const char *read_quoted(apr_pool_t *p, cursor *c)
{
    size_t n = 0;
    const char *q = c->p;
    for (;; n++) {
        if (q >= c->end)
            return NULL; /* unterminated */
        if (*q == '"')
            break;
        if (*q == '\\' && q + 1 < c->end && (q[1] == '"' || q[1] == '\\'))
            q++;
        else if (is_ctl(*q))
            return NULL;
        q++;
    }
    char *out = apr_palloc(p, n + 1);
    for (size_t i = 0; i < n; i++) {
        if (*c->p == '\\' && (c->p[1] == '"' || c->p[1] == '\\'))
            c->p++;
        out[i] = *c->p++;
    }
    out[n] = '\0';
    c->p++; /* the closing quote */
    return out;
}

/* A parameter value: quoted-string, or (liberally) any run of characters
 * that are not whitespace, ';', '"' or controls. NULL when malformed. */
static const char *read_value(apr_pool_t *p, cursor *c)
{
    if (c->p < c->end && *c->p == '"') {
        c->p++;
        return read_quoted(p, c);
    }
    const char *start = c->p;
    while (c->p < c->end && !is_ows(*c->p) && *c->p != ';' && *c->p != '"'
           && !is_ctl(*c->p))
        c->p++;
    if (c->p == start)
        return NULL;
    return apr_pstrmemdup(p, start, (size_t)(c->p - start));
}

/* The next "; name = value" parameter. Returns 1 with name/value set,
 * 0 at the end, -1 when malformed. Empty parameters (";;") are skipped. */
static int next_param(apr_pool_t *p, cursor *c, const char **name,
                      size_t *name_len, const char **value)
{
    for (;;) {
        skip_ows(c);
        if (c->p == c->end)
            return 0;
        if (*c->p != ';')
            return -1;
        c->p++;
        skip_ows(c);
        if (c->p < c->end && *c->p != ';')
            break; /* a parameter follows */
    }
    *name_len = read_token(c, name);
    if (*name_len == 0)
        return -1;
    skip_ows(c);
    if (c->p == c->end || *c->p != '=')
        return -1;
    c->p++;
    skip_ows(c);
    *value = read_value(p, c);
    return *value ? 1 : -1;
}

/* ---- us_mp_boundary ----------------------------------------------------- */

const char *us_mp_boundary(apr_pool_t *p, const char *content_type)
{
    if (!content_type)
        return NULL;
    cursor c = { content_type, content_type + strlen(content_type) };
    const char *type, *sub, *name, *value, *boundary = NULL;
    size_t type_len, sub_len, name_len;
    int r;

    skip_ows(&c);
    type_len = read_token(&c, &type);
    if (c.p == c.end || *c.p != '/')
        return NULL;
    c.p++;
    sub_len = read_token(&c, &sub);
    if (!ci_equal(type, type_len, "multipart") || !ci_equal(sub, sub_len, "form-data"))
        return NULL;
    while ((r = next_param(p, &c, &name, &name_len, &value)) == 1) {
        if (!ci_equal(name, name_len, "boundary"))
            continue;
        if (boundary)
            return NULL; /* two boundaries: ambiguous */
        boundary = value;
    }
    if (r < 0 || !boundary_valid(boundary))
        return NULL;
    return boundary;
}

/* ---- part headers ------------------------------------------------------- */

/* The charsets of an ext-value RFC 5987 has every recipient read. */
typedef enum { EXT_UTF8, EXT_LATIN1, EXT_OTHER } ext_charset;

static ext_charset ext_charset_of(const char *v, size_t len)
{
    if (ci_equal(v, len, "utf-8"))
        return EXT_UTF8;
    if (ci_equal(v, len, "iso-8859-1"))
        return EXT_LATIN1;
    return EXT_OTHER;
}

/* RFC 5987 ext-value "charset'lang'pct-encoded", decoded to UTF-8 (from
 * UTF-8 or ISO-8859-1; NULL for another charset, a bad escape or a NUL). */
static const char *decode_ext_value(apr_pool_t *p, const char *v)
{
    const char *q1 = strchr(v, '\'');
    const char *q2 = q1 ? strchr(q1 + 1, '\'') : NULL;
    if (!q1 || q1 == v || !q2)
        return NULL;
    ext_charset cs = ext_charset_of(v, (size_t)(q1 - v));
    if (cs == EXT_OTHER)
        return NULL;
    const char *s = q2 + 1;
    char *out = apr_palloc(p, 2 * strlen(s) + 1); /* Latin-1 bytes take two */
    size_t n = 0;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '%') {
            int b = us_hex_byte(s + 1);
            if (b <= 0) /* bad escape, or NUL */
                return NULL;
            c = (unsigned char)b;
            s += 2;
        }
        if (cs == EXT_LATIN1 && c >= 0x80) {
            out[n++] = (char)(0xc0 | (c >> 6));
            out[n++] = (char)(0x80 | (c & 0x3f));
        }
        else
            out[n++] = (char)c;
    }
    out[n] = '\0';
    return out;
}

/* Stores one Content-Disposition parameter we care about. */
static const char *take_disposition_param(us_mp *mp, const char *name,
                                          size_t name_len, const char *value)
{
    const char **slot;
    if (ci_equal(name, name_len, "name"))
        slot = &mp->part.name;
    else if (ci_equal(name, name_len, "filename"))
        slot = &mp->part.filename;
    else if (ci_equal(name, name_len, "filename*"))
        slot = &mp->part.filename_star;
    else
        return NULL; /* other parameters are ignored */
    if (*slot)
        return "duplicate Content-Disposition parameter";
    if (slot == &mp->part.filename_star) {
        value = decode_ext_value(mp->part_pool, value);
        if (!value)
            return "malformed filename* parameter";
    }
    *slot = value;
    return NULL;
}

static const char *parse_disposition(us_mp *mp, const char *v, size_t n)
{
    cursor c = { v, v + n };
    const char *type, *name, *value;
    size_t type_len, name_len;
    int r;

    type_len = read_token(&c, &type);
    if (!ci_equal(type, type_len, "form-data"))
        return "part Content-Disposition is not form-data";
    while ((r = next_param(mp->part_pool, &c, &name, &name_len, &value)) == 1) {
        const char *err = take_disposition_param(mp, name, name_len, value);
        if (err)
            return err;
    }
    return r < 0 ? "malformed Content-Disposition" : NULL;
}

/* One header line, without its line end. */
static const char *parse_header_line(us_mp *mp, const char *line, size_t n,
                                     int *have_disposition)
{
    if (n > 0 && is_ows(line[0]))
        return "folded part header lines are not supported";
    for (size_t i = 0; i < n; i++)
        if (is_ctl(line[i]))
            return "invalid character in part header";
    const char *colon = memchr(line, ':', n);
    if (!colon || colon == line)
        return "malformed part header";
    size_t name_len = (size_t)(colon - line);
    for (size_t i = 0; i < name_len; i++)
        if (!is_tchar(line[i]))
            return "malformed part header";

    const char *v = colon + 1, *end = line + n;
    while (v < end && is_ows(*v))
        v++;
    while (end > v && is_ows(end[-1]))
        end--;
    if (ci_equal(line, name_len, "content-disposition")) {
        if (*have_disposition)
            return "duplicate Content-Disposition header";
        *have_disposition = 1;
        return parse_disposition(mp, v, (size_t)(end - v));
    }
    if (ci_equal(line, name_len, "content-type")) {
        if (mp->part.content_type)
            return "duplicate Content-Type header";
        mp->part.content_type = apr_pstrmemdup(mp->part_pool, v, (size_t)(end - v));
    }
    return NULL; /* other headers are ignored */
}

/* The header block hdr[0..n): complete lines, each ending in LF. */
static const char *parse_part_headers(us_mp *mp, const char *hdr, size_t n)
{
    const char *line = hdr, *end = hdr + n;
    int have_disposition = 0;

    if (n == 0)
        return "missing part headers";
    memset(&mp->part, 0, sizeof(mp->part));
    while (line < end) {
        const char *lf = memchr(line, '\n', (size_t)(end - line));
        size_t len = (size_t)(lf - line);
        if (len > 0 && line[len - 1] == '\r')
            len--;
        const char *err = parse_header_line(mp, line, len, &have_disposition);
        if (err)
            return err;
        line = lf + 1;
    }
    return have_disposition ? NULL : "part without Content-Disposition: form-data";
}

/* ---- state machine ------------------------------------------------------ */

static void fail(us_mp *mp, const char *why)
{
    mp->status = US_MP_ERROR;
    mp->error = why;
}

static void abort_parse(us_mp *mp)
{
    mp->status = US_MP_ABORTED;
    mp->error = "aborted by a callback";
}

/* Passes part data on (discards preamble). 0 when the callback stopped us. */
static int emit(us_mp *mp, const char *data, size_t len)
{
    if (mp->state != ST_DATA || len == 0 || !mp->cb.part_data)
        return 1;
    if (mp->cb.part_data(mp->ctx, data, len) != 0) {
        abort_parse(mp);
        return 0;
    }
    return 1;
}

/* The delimiter line ended well: the part before it is complete. */
static int end_part(us_mp *mp)
{
    if (!mp->part_open)
        return 1;
    mp->part_open = 0;
    int rc = mp->cb.part_end ? mp->cb.part_end(mp->ctx) : 0;
    apr_pool_clear(mp->part_pool); /* the part's strings die here */
    if (rc != 0) {
        abort_parse(mp);
        return 0;
    }
    return 1;
}

static void start_headers(us_mp *mp)
{
    if (!end_part(mp))
        return;
    mp->state = ST_HEADERS;
    mp->hdr_len = 0;
    mp->line_start = 0;
}

static void delimiter_found(us_mp *mp)
{
    mp->match = 0;
    mp->state = ST_AFTER_DELIM;
}

/* Scans data (with no delimiter match pending) for the delimiter; passes on
 * everything proven to be data. Returns the bytes consumed. */
static size_t scan_body(us_mp *mp, const char *d, size_t len)
{
    size_t from = 0;
    while (from < len) {
        const char *cr = memchr(d + from, '\r', len - from);
        if (!cr)
            break;
        size_t at = (size_t)(cr - d);
        size_t n = len - at < mp->dlen ? len - at : mp->dlen;
        if (memcmp(cr, mp->delim, n) == 0) {
            if (!emit(mp, d, at))
                return len;
            if (n == mp->dlen) {
                delimiter_found(mp);
                return at + n;
            }
            mp->match = n; /* the input ends inside a possible delimiter */
            return len;
        }
        from = at + 1;
    }
    emit(mp, d, len);
    return len;
}

/* ST_PREAMBLE / ST_DATA */
static size_t step_body(us_mp *mp, const char *d, size_t len)
{
    size_t used = 0;
    if (mp->match > 0) { /* continue the match begun in an earlier feed */
        while (used < len && mp->match < mp->dlen && d[used] == mp->delim[mp->match]) {
            used++;
            mp->match++;
        }
        if (mp->match == mp->dlen) {
            delimiter_found(mp);
            return used;
        }
        if (used == len)
            return used;
        /* d[used] broke the match: the held-back bytes were data after all.
         * d[used] itself may be the CR of a delimiter, so scan from it. */
        size_t held = mp->match;
        mp->match = 0;
        if (!emit(mp, mp->delim, held))
            return len;
    }
    return used + scan_body(mp, d + used, len - used);
}

/* ST_AFTER_DELIM, ST_PADDING, ST_DELIM_CR, ST_CLOSE_DASH: one byte. */
static void step_delim_line(us_mp *mp, char c)
{
    const char *bad = "invalid characters after boundary";
    if (mp->state == ST_AFTER_DELIM && c == '-') {
        mp->state = ST_CLOSE_DASH;
    } else if (mp->state == ST_CLOSE_DASH) {
        if (c != '-')
            fail(mp, bad);
        else if (end_part(mp))
            mp->status = US_MP_DONE; /* the epilogue is ignored */
    } else if (mp->state == ST_DELIM_CR) {
        if (c == '\n')
            start_headers(mp);
        else
            fail(mp, bad);
    } else { /* ST_AFTER_DELIM, ST_PADDING */
        if (is_ows(c))
            mp->state = ST_PADDING;
        else if (c == '\r')
            mp->state = ST_DELIM_CR;
        else if (c == '\n') /* bare LF: be liberal */
            start_headers(mp);
        else
            fail(mp, bad);
    }
}

/* The blank line ending the header block was read. */
static void headers_done(us_mp *mp)
{
    const char *err = parse_part_headers(mp, mp->hdr, mp->line_start);
    if (err) {
        fail(mp, err);
        return;
    }
    mp->state = ST_DATA;
    mp->part_open = 1;
    mp->match = 0;
    if (mp->cb.part_begin && mp->cb.part_begin(mp->ctx, &mp->part) != 0)
        abort_parse(mp);
}

/* ST_HEADERS: takes bytes up to and including the next LF. */
static size_t step_headers(us_mp *mp, const char *d, size_t len)
{
    const char *lf = memchr(d, '\n', len);
    size_t n = lf ? (size_t)(lf - d) + 1 : len;
    if (n > sizeof(mp->hdr) - mp->hdr_len) {
        fail(mp, "header block too large");
        return n;
    }
    memcpy(mp->hdr + mp->hdr_len, d, n);
    mp->hdr_len += n;
    if (!lf)
        return n;
    size_t line_len = mp->hdr_len - mp->line_start; /* with its LF */
    if (line_len == 1 || (line_len == 2 && mp->hdr[mp->line_start] == '\r'))
        headers_done(mp); /* an empty line (CRLF or bare LF) */
    else
        mp->line_start = mp->hdr_len;
    return n;
}

/* Runs the state machine on d[0..len) (len > 0); returns bytes consumed. */
static size_t step(us_mp *mp, const char *d, size_t len)
{
    switch (mp->state) {
    case ST_PREAMBLE:
    case ST_DATA:
        return step_body(mp, d, len);
    case ST_HEADERS:
        return step_headers(mp, d, len);
    default:
        step_delim_line(mp, d[0]);
        return 1;
    }
}

/* ---- API ---------------------------------------------------------------- */

us_mp *us_mp_create(apr_pool_t *p, const char *boundary,
                    const us_mp_callbacks *cb, void *ctx)
{
    us_mp *mp = apr_pcalloc(p, sizeof(*mp));
    if (cb)
        mp->cb = *cb;
    mp->ctx = ctx;
    mp->state = ST_PREAMBLE;
    mp->status = US_MP_CONTINUE;
    /* An invalid boundary yields a parser that reports it, never a NULL. */
    if (!boundary_valid(boundary)) {
        fail(mp, "invalid boundary");
        return mp;
    }
    if (apr_pool_create(&mp->part_pool, p) != APR_SUCCESS) {
        fail(mp, "out of memory");
        return mp;
    }
    size_t blen = strlen(boundary);
    memcpy(mp->delim, "\r\n--", 4);
    memcpy(mp->delim + 4, boundary, blen);
    mp->dlen = 4 + blen;
    /* The first boundary may open the body without a CRLF before it: start
     * as if the CRLF had been seen. */
    mp->match = 2;
    return mp;
}

us_mp_status us_mp_feed(us_mp *mp, const char *data, size_t len)
{
    size_t used = 0;
    if (!data)
        len = 0;
    while (mp->status == US_MP_CONTINUE && used < len)
        used += step(mp, data + used, len - used);
    return mp->status;
}

us_mp_status us_mp_finish(us_mp *mp)
{
    if (mp->status == US_MP_CONTINUE)
        fail(mp, "truncated body");
    return mp->status;
}

/* NULL while there is no error (CONTINUE, DONE). */
const char *us_mp_error(const us_mp *mp)
{
    return mp->error;
}
