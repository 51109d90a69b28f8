/*
 * us_form.c - bounded multipart form fields (pure).
 *
 * Every name and value lives in one us_buf as "name\0value\0"; a field is
 * a pair of offsets into it (offsets, since the buffer moves as it grows).
 */
#include "us_form.h"
#include "us_buf.h"

#include <apr_tables.h>
#include <string.h>

typedef struct {
    apr_size_t name;
    apr_size_t value;
} field_at;

struct us_form {
    us_buf bytes;               /* names and values, each NUL-terminated */
    apr_array_header_t *fields; /* field_at of the ended fields */
    apr_size_t held;            /* bytes of names and values (NULs not counted) */
    apr_size_t max_bytes;
    int max_fields;
    int open;                   /* a field was begun and not ended */
    field_at current;
};

us_form *us_form_create(apr_pool_t *p, apr_size_t max_bytes, int max_fields)
{
    us_form *f = apr_pcalloc(p, sizeof(*f));
    /* the NUL after every name and value is held too: room for max_fields of each */
    us_buf_init(&f->bytes, p, max_bytes + 2 * (apr_size_t)max_fields);
    f->fields = apr_array_make(p, 8, sizeof(field_at));
    f->max_bytes = max_bytes;
    f->max_fields = max_fields;
    return f;
}

apr_size_t us_form_bytes(const us_form *f)
{
    return f->held;
}

static us_form_rc append(us_form *f, const char *data, apr_size_t len)
{
    if (len > f->max_bytes - f->held || us_buf_append(&f->bytes, data, len) != 0)
        return US_FORM_TOO_LARGE;
    f->held += len;
    return US_FORM_OK;
}

us_form_rc us_form_begin(us_form *f, const char *name)
{
    if (f->open)
        us_form_end(f);
    if (f->fields->nelts >= f->max_fields)
        return US_FORM_TOO_MANY;
    f->current.name = f->bytes.len;
    us_form_rc rc = append(f, name, strlen(name));
    if (rc != US_FORM_OK)
        return rc;
    us_buf_append(&f->bytes, "", 1); /* the name's NUL: room reserved at create */
    f->current.value = f->bytes.len;
    f->open = 1;
    return US_FORM_OK;
}

us_form_rc us_form_append(us_form *f, const char *data, apr_size_t len)
{
    if (!f->open)
        return US_FORM_OK;
    if (memchr(data, '\0', len))
        return US_FORM_NUL;
    return append(f, data, len);
}

void us_form_end(us_form *f)
{
    if (!f->open)
        return;
    us_buf_append(&f->bytes, "", 1); /* the value's NUL: room reserved at create */
    *(field_at *)apr_array_push(f->fields) = f->current;
    f->open = 0;
}

const char *us_form_get(const us_form *f, const char *name)
{
    const field_at *at = (const field_at *)f->fields->elts;
    for (int i = f->fields->nelts - 1; i >= 0; i--)
        if (strcmp(f->bytes.data + at[i].name, name) == 0)
            return f->bytes.data + at[i].value;
    return NULL;
}
