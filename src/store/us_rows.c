/*
 * us_rows.c - reading the columns of a row the same way whichever
 * backend's select returned it.
 */
#include "us_ops.h"

#include <apr_strings.h>
#include <string.h>

long long us_row_ll(const us_row *r, int col)
{
    const char *v = apr_dbd_get_entry(r->drv, r->row, col);
    return v ? apr_atoi64(v) : 0;
}

const char *us_row_str(const us_row *r, apr_pool_t *p, int col)
{
    const char *v = apr_dbd_get_entry(r->drv, r->row, col);
    return apr_pstrdup(p, v ? v : "");
}

/* SQLite's driver reads NULL as NULL; PostgreSQL's as "", which only the
 * datum tells from an empty text. */
const char *us_row_null(const us_row *r, apr_pool_t *p, int col)
{
    const char *v = apr_dbd_get_entry(r->drv, r->row, col);
    char *d = NULL;
    if (!v)
        return NULL;
    if (*v)
        return apr_pstrdup(p, v);
    if (apr_dbd_datum_get(r->drv, r->row, col, APR_DBD_TYPE_STRING, &d) != APR_SUCCESS || !d)
        return NULL;
    return apr_pstrdup(p, d);
}

void us_row_to_ll(const us_row *r, apr_pool_t *p, void *out)
{
    (void)p;
    *(long long *)out = us_row_ll(r, 0);
}

void us_row_to_str(const us_row *r, apr_pool_t *p, void *out)
{
    *(const char **)out = us_row_str(r, p, 0);
}

/* Column order of SESSION_COLS in the dialects' SQL */
void us_row_to_session(const us_row *r, apr_pool_t *p, void *out)
{
    us_session *s = out;
    memset(s, 0, sizeof(*s));
    s->id = us_row_str(r, p, 0);
    s->workspace = us_row_str(r, p, 1);
    s->user_id = us_row_str(r, p, 2);
    s->given_name = us_row_str(r, p, 3);
    s->family_name = us_row_str(r, p, 4);
    s->write_mode = us_row_str(r, p, 5);
    s->parallel = (int)us_row_ll(r, 6);
    s->status = us_row_str(r, p, 7);
    s->created_at = (apr_time_t)us_row_ll(r, 8);
    s->expires_at = (apr_time_t)us_row_ll(r, 9);
    s->uploaded_files = us_row_ll(r, 10);
    s->finished_files = us_row_ll(r, 11);
    s->failed_files = us_row_ll(r, 12);
    s->direct = (int)us_row_ll(r, 13);
    s->closed_at = (apr_time_t)us_row_ll(r, 14);
}

/* Column order of SESSION_ITEM_COLS: the fields of a list item; workspace
 * stays NULL, the counters and direct 0 */
void us_push_session_item(const us_row *r, apr_pool_t *p, void *out)
{
    us_session *s = apr_array_push(out);
    memset(s, 0, sizeof(*s));
    s->id = us_row_str(r, p, 0);
    s->user_id = us_row_str(r, p, 1);
    s->given_name = us_row_str(r, p, 2);
    s->family_name = us_row_str(r, p, 3);
    s->write_mode = us_row_str(r, p, 4);
    s->parallel = (int)us_row_ll(r, 5);
    s->status = us_row_str(r, p, 6);
    s->created_at = (apr_time_t)us_row_ll(r, 7);
    s->expires_at = (apr_time_t)us_row_ll(r, 8);
}

/* Column order of WORKSPACE_FILE_COLS */
void us_row_to_workspace_file(const us_row *r, apr_pool_t *p, void *out)
{
    us_workspace_file *f = out;
    f->file_id = us_row_str(r, p, 0);
    f->name = us_row_str(r, p, 1);
    f->size = us_row_ll(r, 2);
    f->meta = us_row_null(r, p, 3);
    f->created_at = (apr_time_t)us_row_ll(r, 4);
    f->characters = us_row_null(r, p, 5) ? us_row_ll(r, 5) : -1;
}

void us_row_to_workspace(const us_row *r, apr_pool_t *p, void *out)
{
    us_workspace *w = out;
    w->name = us_row_str(r, p, 0);
    w->workspace_id = us_row_str(r, p, 1);
    w->created_at = (apr_time_t)us_row_ll(r, 2);
}

void us_push_str(const us_row *r, apr_pool_t *p, void *out)
{
    us_row_to_str(r, p, apr_array_push(out));
}

/* Column order of WORKSPACE_FILE_LIST_COLS: a list's row, its metadata
 * possibly left for the caller to read (meta_deferred) */
void us_push_workspace_file(const us_row *r, apr_pool_t *p, void *out)
{
    us_workspace_file *f = apr_array_push(out);
    us_row_to_workspace_file(r, p, f);
    f->meta_deferred = us_row_ll(r, 6) != 0;
}

void us_push_workspace(const us_row *r, apr_pool_t *p, void *out)
{
    us_row_to_workspace(r, p, apr_array_push(out));
}

/* One array element at out (NULL: its length only): NULL, or the value
 * double-quoted; returns its length. */
static apr_size_t array_elem(char *out, const char *v)
{
    apr_size_t n = 0;
    if (!v) {
        for (int k = 0; out && k < 4; k++)
            out[k] = "NULL"[k];
        return 4;
    }
    if (out)
        out[n] = '"';
    n++;
    for (const char *c = v; *c; c++) {
        if (*c == '"' || *c == '\\') {
            if (out)
                out[n] = '\\';
            n++;
        }
        if (out)
            out[n] = *c;
        n++;
    }
    if (out)
        out[n] = '"';
    return n + 1;
}

const char *us_array_literal(apr_pool_t *p, int n, us_array_value_fn value, const void *ctx)
{
    char num[32];
    apr_size_t len = 2;
    for (int i = 0; i < n; i++)
        len += (i > 0) + array_elem(NULL, value(ctx, i, num, sizeof(num)));
    char *out = apr_palloc(p, len + 1), *at = out;
    *at++ = '{';
    for (int i = 0; i < n; i++) {
        if (i > 0)
            *at++ = ',';
        at += array_elem(at, value(ctx, i, num, sizeof(num)));
    }
    *at++ = '}';
    *at = '\0';
    return out;
}
