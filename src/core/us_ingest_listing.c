/* us_ingest_listing.c - a direct-upload session's listing (UploadSessionS3DirectUpload):
 * the objects a client wrote straight into the bucket under the session's
 * prefix, read as upload rows: one per file, its sidecar beside it, those
 * written after the close or under a name no file may have left out with
 * their reason. Pure: the storage's listing, no store. */
#include "us_ingest.h"
#include "us_filename.h"
#include "us_uuid.h"

#include <apr_strings.h>
#include <apr_tables.h>

#include <stdlib.h>
#include <string.h>

static int by_blob(const void *a, const void *b)
{
    return strcmp(((const us_storage_object *)a)->blob, ((const us_storage_object *)b)->blob);
}

static int is_meta_name(const char *name)
{
    size_t n = strlen(name), m = sizeof(US_META_SUFFIX) - 1;
    return n > m && strcmp(name + n - m, US_META_SUFFIX) == 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const us_listed_object *)a)->name, ((const us_listed_object *)b)->name);
}

/* The file name of a directly uploaded object: its key's last part read
 * as the upload target reads a part's filename (the SDK's aiohttp quotes
 * it, and S3 keeps the key as sent); NULL when that is no name a file may
 * have (us_filename_problem: a client would write it outside its folder). */
static const char *listing_name(apr_pool_t *p, const char *blob)
{
    const char *name = us_filename_from_part(p, blob, NULL);
    return us_filename_problem(name) ? NULL : name;
}

apr_time_t us_direct_written_by(const us_session *s)
{
    return s->closed_at ? s->closed_at + US_DIRECT_CLOCK_SKEW : 0;
}

apr_status_t us_ingest_listing(us_storage *st, apr_pool_t *p, const char *session_id,
                               long long max_files, apr_time_t written_by, apr_time_t now,
                               apr_array_header_t **objects, us_listing_left_out *left)
{
    apr_array_header_t *objs;
    apr_hash_t *names = apr_hash_make(p), *files = apr_hash_make(p); /* files: raw ones kept */
    us_listing_left_out out = { 0, 0, 0, 0 };
    long long raw = 0;
    apr_status_t rv = us_storage_session_objects(st, p, session_id, &objs);
    if (rv != APR_SUCCESS)
        return rv;
    if (objs->nelts > 1)
        qsort(objs->elts, (size_t)objs->nelts, sizeof(us_storage_object), by_blob);
    *objects = apr_array_make(p, objs->nelts > 0 ? objs->nelts : 1, sizeof(us_listed_object));
    const char **named = apr_pcalloc(p, sizeof(char *) * (apr_size_t)(objs->nelts + 1));
    for (int i = 0; i < objs->nelts; i++)
        named[i] = listing_name(p, APR_ARRAY_IDX(objs, i, us_storage_object).blob);
    /* the raw files (and the keys of no name) first, then the sidecars,
     * each in key order: a sidecar is kept when its file is */
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < objs->nelts; i++) {
            const us_storage_object *o = &APR_ARRAY_IDX(objs, i, us_storage_object);
            const char *name = named[i];
            int meta = name && is_meta_name(name);
            if (meta != pass)
                continue;
            /* uploaded after the close: the upload target refuses those */
            if (written_by > 0 && o->modified > written_by) {
                out.late++;
                continue;
            }
            /* two keys of one name ("a b", "a%20b"): the first in key order */
            if (!name || apr_hash_get(names, name, APR_HASH_KEY_STRING)) {
                out.unnamed++;
                continue;
            }
            if (max_files > 0 &&
                (meta ? !apr_hash_get(files, name, (apr_ssize_t)(strlen(name) -
                                                                 (sizeof(US_META_SUFFIX) - 1)))
                      : raw >= max_files)) {
                if (meta)
                    out.sidecars++;
                else
                    out.over++;
                continue;
            }
            apr_hash_set(names, name, APR_HASH_KEY_STRING, name);
            if (!meta)
                apr_hash_set(files, name, APR_HASH_KEY_STRING, name);
            raw += !meta;
            us_listed_object *l = apr_array_push(*objects);
            char *id = apr_palloc(p, 37);
            us_uuid_of_name(p, session_id, o->blob, id);
            l->name = name;
            l->blob = o->blob;
            l->etag = o->etag;
            l->file_ingestion_id = id;
            l->size = o->size;
            l->is_meta = meta;
            l->uploaded_at = now;
        }
    if ((*objects)->nelts > 1)
        qsort((*objects)->elts, (size_t)(*objects)->nelts, sizeof(us_listed_object), by_name);
    if (left)
        *left = out;
    return APR_SUCCESS;
}

void us_ingest_listing_page(apr_pool_t *p, const apr_array_header_t *objects, const char *status,
                            const us_page *pg, apr_array_header_t **rows, long long *total,
                            int *has_more)
{
    /* the positions of the raw files in objects */
    int *raw = apr_palloc(p, sizeof(int) * (apr_size_t)(objects->nelts + 1));
    long long n = 0, from = 0, to;
    for (int i = 0; i < objects->nelts; i++) {
        const us_listed_object *o = &APR_ARRAY_IDX(objects, i, us_listed_object);
        if (!o->is_meta && (!status || strcmp(status, "PENDING") == 0))
            raw[n++] = i;
    }
#define RAW(i) (&APR_ARRAY_IDX(objects, raw[i], us_listed_object))
    *total = n;
    *has_more = 0;
    *rows = apr_array_make(p, 8, sizeof(us_session_file_row));
    if (pg->cursor) {
        long long at = -1;
        for (long long i = 0; i < n && at < 0; i++)
            if (strcmp(RAW(i)->file_ingestion_id, pg->cursor) == 0)
                at = i;
        if (at < 0)
            return;
        if (pg->before) {
            from = at - pg->limit > 0 ? at - pg->limit : 0;
            to = at;
            *has_more = from > 0;
        }
        else {
            from = at + 1;
            to = n - from > pg->limit ? from + pg->limit : n;
            *has_more = to < n;
        }
    }
    else {
        from = pg->offset < n ? pg->offset : n;
        to = n - from > pg->limit ? from + pg->limit : n;
        *has_more = to < n;
    }
    for (long long i = from; i < to; i++) {
        us_session_file_row *f = apr_array_push(*rows);
        f->file_ingestion_id = RAW(i)->file_ingestion_id;
        f->name = RAW(i)->name;
        f->status = "PENDING";
        f->reason = NULL;
    }
#undef RAW
}
