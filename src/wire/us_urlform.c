/* us_urlform.c - application/x-www-form-urlencoded, streamed (pure). */
#include "us_urlform.h"
#include "us_crypto.h"

#include <string.h>

#define OUT_PIECE 4096 /* decoded value bytes handed over at once */

struct us_urlform {
    const us_mp_callbacks *cb;
    void *ctx;
    us_mp_status st;
    int started;  /* the current segment has a byte (or its '=') */
    int in_value; /* after the current field's '=' */
    char name[US_URLFORM_MAX_NAME + 1];
    size_t name_len;
    int name_long;
    int in_pct;   /* a '%' was seen; pct holds what followed it so far */
    char pct[2];
    int npct;
    char out[OUT_PIECE];
    size_t out_len;
};

us_urlform *us_urlform_create(apr_pool_t *p, const us_mp_callbacks *cb, void *ctx)
{
    us_urlform *f = apr_pcalloc(p, sizeof(*f));
    f->cb = cb;
    f->ctx = ctx;
    f->st = US_MP_CONTINUE;
    return f;
}

static void stop_if(us_urlform *f, int rc)
{
    if (rc != 0)
        f->st = US_MP_ABORTED;
}

static void flush_value(us_urlform *f)
{
    if (f->out_len && f->st == US_MP_CONTINUE)
        stop_if(f, f->cb->part_data(f->ctx, f->out, f->out_len));
    f->out_len = 0;
}

/* One decoded byte: of the value once its '=' was seen, else of the name. */
static void emit(us_urlform *f, char c)
{
    f->started = 1;
    if (f->in_value) {
        f->out[f->out_len++] = c;
        if (f->out_len == sizeof(f->out))
            flush_value(f);
    }
    else if (f->name_len < US_URLFORM_MAX_NAME && c != '\0') {
        f->name[f->name_len++] = c;
    }
    else { /* too long, or a NUL that would cut it short: no name */
        f->name_long = 1;
    }
}

static void begin_value(us_urlform *f)
{
    us_mp_part part = { NULL, NULL, NULL, NULL };
    f->started = f->in_value = 1;
    f->name[f->name_len] = '\0';
    part.name = f->name_long ? NULL : f->name;
    stop_if(f, f->cb->part_begin(f->ctx, &part));
}

/* At '&' or the end: the field ends (a bare name is a field with an
 * empty value); then a new segment begins. */
static void end_segment(us_urlform *f)
{
    if (f->started && !f->in_value)
        begin_value(f);
    if (f->in_value) {
        flush_value(f);
        if (f->st == US_MP_CONTINUE)
            stop_if(f, f->cb->part_end(f->ctx));
    }
    f->started = f->in_value = f->name_long = 0;
    f->name_len = 0;
}

static void take(us_urlform *f, char c);

/* The bytes after a '%' are not two hex digits: the '%' is itself, and
 * what followed it is read again as ordinary input (at most two bytes, so
 * this recurses at most twice). */
static void percent_literal(us_urlform *f)
{
    char again[2];
    int n = f->npct;
    memcpy(again, f->pct, (size_t)n);
    f->in_pct = 0;
    f->npct = 0;
    emit(f, '%');
    for (int i = 0; i < n && f->st == US_MP_CONTINUE; i++)
        take(f, again[i]);
}

static void take(us_urlform *f, char c)
{
    if (f->in_pct) {
        f->pct[f->npct++] = c;
        if (us_hex_value((unsigned char)c) < 0)
            percent_literal(f);
        else if (f->npct == 2) {
            f->in_pct = 0;
            f->npct = 0;
            emit(f, (char)(us_hex_value((unsigned char)f->pct[0]) * 16 +
                           us_hex_value((unsigned char)f->pct[1])));
        }
        return;
    }
    switch (c) {
    case '&':
        end_segment(f);
        break;
    case '=':
        if (f->in_value)
            emit(f, c);
        else
            begin_value(f);
        break;
    case '%':
        f->in_pct = 1;
        f->started = 1;
        break;
    case '+':
        emit(f, ' ');
        break;
    default:
        emit(f, c);
    }
}

us_mp_status us_urlform_feed(us_urlform *f, const char *data, size_t len)
{
    for (size_t i = 0; i < len && f->st == US_MP_CONTINUE; i++)
        take(f, data[i]);
    return f->st;
}

us_mp_status us_urlform_finish(us_urlform *f)
{
    if (f->st == US_MP_CONTINUE && f->in_pct)
        percent_literal(f);
    if (f->st == US_MP_CONTINUE)
        end_segment(f);
    if (f->st == US_MP_CONTINUE)
        f->st = US_MP_DONE;
    return f->st;
}
