/*
 * us_form.h - the form fields of a multipart POST, collected under fixed
 * bounds: at most max_fields fields and max_bytes of names and values
 * together, whatever the number, size or fragmentation of the parts. Field
 * values may not hold a NUL byte (a C string would silently cut it). Pure.
 */
#ifndef US_FORM_H
#define US_FORM_H

#include <apr_pools.h>

typedef enum {
    US_FORM_OK = 0,
    US_FORM_TOO_MANY,   /* more than max_fields fields */
    US_FORM_TOO_LARGE,  /* names and values over max_bytes */
    US_FORM_NUL         /* a NUL byte in a value */
} us_form_rc;

typedef struct us_form us_form;

us_form *us_form_create(apr_pool_t *p, apr_size_t max_bytes, int max_fields);

/* Starts a field; its name counts toward max_bytes. */
us_form_rc us_form_begin(us_form *f, const char *name);

/* Appends a piece of the current field's value. */
us_form_rc us_form_append(us_form *f, const char *data, apr_size_t len);

/* Ends the current field, which us_form_get sees from now on. */
void us_form_end(us_form *f);

/* The value of the last ended field of that name, or NULL. Valid until the
 * pool is cleared. */
const char *us_form_get(const us_form *f, const char *name);

/* Names and values held, in bytes (what counts toward max_bytes). */
apr_size_t us_form_bytes(const us_form *f);

#endif
