/*
 * us_storage.c - the file-storage front: picks the backend by name and
 * passes every operation of us_storage.h to its table
 * (us_storage_backend.h). Writers and readers wrap the backend's own.
 */
#include "us_storage_backend.h"

#include <apr_strings.h>
#include <string.h>

struct us_storage_writer {
    const us_storage_backend *backend;
    void *impl;
};

struct us_storage_reader {
    const us_storage_backend *backend;
    void *impl;
    apr_off_t size;
    apr_file_t *local;
};

static const us_storage_backend *const BACKENDS[] = { &us_posix_storage, &us_s3_storage };

const us_storage_backend *us_storage_backend_for(const char *name)
{
    for (size_t i = 0; i < sizeof(BACKENDS) / sizeof(BACKENDS[0]); i++)
        if (strcmp(BACKENDS[i]->name, name) == 0)
            return BACKENDS[i];
    return NULL;
}

int us_storage_backend_known(const char *name)
{
    return us_storage_backend_for(name) != NULL;
}

apr_status_t us_storage_configure(apr_pool_t *p, const char *name, const char *data_dir,
                                  const char *params, us_storage **out, const char **err)
{
    const us_storage_backend *be = us_storage_backend_for(name);
    void *conf = NULL;
    if (!be) {
        *err = apr_psprintf(p, "no storage backend '%s' in this build", name);
        return APR_EINVAL;
    }
    apr_status_t rv = be->configure(p, data_dir, params, &conf, err);
    if (rv != APR_SUCCESS)
        return rv;
    us_storage *st = apr_pcalloc(p, sizeof(*st));
    st->backend = be;
    st->conf = conf;
    *out = st;
    return APR_SUCCESS;
}

const char *us_storage_name(const us_storage *st) { return st->backend->name; }

void us_storage_set_logger(us_storage *st, const us_logger *lg) { st->log = lg; }

us_storage *us_storage_stoppable(const us_storage *st, apr_pool_t *p, volatile apr_uint32_t *stop)
{
    us_storage *h = apr_pmemdup(p, st, sizeof(*st));
    h->stop = stop;
    h->cut_logged = apr_pcalloc(p, sizeof(*h->cut_logged));
    return h;
}

apr_status_t us_storage_prepare(us_storage *st, apr_pool_t *p)
{
    return st->backend->prepare(st, p);
}

apr_status_t us_storage_check(us_storage *st, apr_pool_t *p)
{
    return st->backend->check(st, p);
}

apr_array_header_t *us_storage_local_dirs(const us_storage *st, apr_pool_t *p)
{
    if (st->backend->local_dirs)
        return st->backend->local_dirs(st, p);
    return apr_array_make(p, 1, sizeof(const char *));
}

const char *us_storage_temp_dir(const us_storage *st)
{
    return st->backend->temp_dir ? st->backend->temp_dir(st) : NULL;
}

int us_storage_recover(us_storage *st, apr_pool_t *p)
{
    return st->backend->recover(st, p);
}

void us_storage_tidy(us_storage *st, apr_pool_t *p)
{
    if (st->backend->tidy)
        st->backend->tidy(st, p);
}

static us_storage_writer *wrap_writer(const us_storage_backend *be, apr_pool_t *p, void *impl)
{
    us_storage_writer *w = apr_palloc(p, sizeof(*w));
    w->backend = be;
    w->impl = impl;
    return w;
}

apr_status_t us_storage_upload_create(us_storage *st, apr_pool_t *p, const char *session_id,
                                      const char *blob, us_storage_writer **out)
{
    void *impl = NULL;
    apr_status_t rv = st->backend->upload_create(st, p, session_id, blob, &impl);
    if (rv == APR_SUCCESS)
        *out = wrap_writer(st->backend, p, impl);
    return rv;
}

apr_status_t us_storage_file_create(us_storage *st, apr_pool_t *p, const char *file_id,
                                    us_storage_writer **out)
{
    void *impl = NULL;
    apr_status_t rv = st->backend->file_create(st, p, file_id, &impl);
    if (rv == APR_SUCCESS)
        *out = wrap_writer(st->backend, p, impl);
    return rv;
}

apr_status_t us_storage_write(us_storage_writer *w, const char *data, apr_size_t len)
{
    return w->backend->write(w->impl, data, len);
}

apr_status_t us_storage_finish(us_storage_writer *w) { return w->backend->finish(w->impl); }
apr_status_t us_storage_commit(us_storage_writer *w) { return w->backend->commit(w->impl); }
void us_storage_abandon(us_storage_writer *w) { w->backend->abandon(w->impl); }

void us_storage_session_tidy(us_storage *st, apr_pool_t *p, const char *session_id)
{
    if (st->backend->session_tidy)
        st->backend->session_tidy(st, p, session_id);
}

long long us_storage_writer_size(const us_storage_writer *w)
{
    return w->backend->writer_size(w->impl);
}

const char *us_storage_writer_sha256_hex(const us_storage_writer *w)
{
    return w->backend->writer_sha256_hex(w->impl);
}

const char *us_storage_writer_where(const us_storage_writer *w)
{
    return w->backend->writer_where(w->impl);
}

apr_status_t us_storage_file_open(us_storage *st, apr_pool_t *p, const char *file_id,
                                  us_storage_reader **out)
{
    us_storage_reader *r = apr_pcalloc(p, sizeof(*r));
    r->backend = st->backend;
    apr_status_t rv = st->backend->file_open(st, p, file_id, &r->impl, &r->size, &r->local);
    if (rv == APR_SUCCESS)
        *out = r;
    return rv;
}

apr_off_t us_storage_reader_size(const us_storage_reader *r) { return r->size; }
apr_file_t *us_storage_reader_file(const us_storage_reader *r) { return r->local; }

apr_status_t us_storage_read_at(us_storage_reader *r, apr_off_t off, char *buf, apr_size_t *len)
{
    return r->backend->read_at(r->impl, off, buf, len);
}

apr_status_t us_storage_upload_read(us_storage *st, apr_pool_t *p, const char *session_id,
                                    const char *blob, apr_size_t max, char **data,
                                    apr_size_t *len)
{
    return st->backend->upload_read(st, p, session_id, blob, max, data, len);
}

apr_status_t us_storage_file_read(us_storage *st, apr_pool_t *p, const char *file_id,
                                  apr_size_t max, char **data, apr_size_t *len)
{
    return st->backend->file_read(st, p, file_id, max, data, len);
}

apr_status_t us_storage_publish(us_storage *st, apr_pool_t *p, const char *session_id,
                                const char *blob, const char *file_id, const char *etag,
                                long long size, int *moved)
{
    return st->backend->publish(st, p, session_id, blob, file_id, etag, size, moved);
}

int us_storage_publish_width(const us_storage *st)
{
    return st->backend->publish_width > 1 ? st->backend->publish_width : 1;
}

long long us_storage_max_object_size(const us_storage *st)
{
    return st->backend->max_object_size > 0 ? st->backend->max_object_size : 0;
}

apr_status_t us_storage_publish_sync(us_storage *st, apr_pool_t *p)
{
    return st->backend->publish_sync(st, p);
}

apr_status_t us_storage_upload_delete(us_storage *st, apr_pool_t *p, const char *session_id,
                                      const char *blob)
{
    return st->backend->upload_delete(st, p, session_id, blob);
}

apr_status_t us_storage_file_delete(us_storage *st, apr_pool_t *p, const char *file_id)
{
    return st->backend->file_delete(st, p, file_id);
}

int us_storage_session_clear(us_storage *st, apr_pool_t *p, const char *session_id)
{
    return st->backend->session_clear(st, p, session_id);
}

int us_storage_session_clear_late(us_storage *st, apr_pool_t *p, const char *session_id)
{
    if (!st->backend->session_clear_late)
        return st->backend->session_clear(st, p, session_id);
    return st->backend->session_clear_late(st, p, session_id);
}

apr_status_t us_storage_sessions_holding(us_storage *st, apr_pool_t *p, apr_hash_t **ids)
{
    if (!st->backend->sessions_holding)
        return APR_ENOTIMPL;
    return st->backend->sessions_holding(st, p, ids);
}

apr_status_t us_storage_session_list(us_storage *st, apr_pool_t *p, const char *session_id,
                                     apr_array_header_t **blobs)
{
    return st->backend->session_list(st, p, session_id, blobs);
}

apr_status_t us_storage_session_objects(us_storage *st, apr_pool_t *p, const char *session_id,
                                        apr_array_header_t **objects)
{
    return st->backend->session_objects(st, p, session_id, objects);
}

apr_status_t us_storage_files_page(us_storage *st, apr_pool_t *p, const char *after, int limit,
                                   apr_array_header_t **files, const char **next)
{
    if (!st->backend->files_page)
        return APR_ENOTIMPL;
    return st->backend->files_page(st, p, after ? after : "", limit, files, next);
}

apr_status_t us_storage_post_target_of(us_storage *st, apr_pool_t *p, const char *session_id,
                                       us_storage_post_target *out)
{
    if (!st->backend->post_target)
        return APR_ENOTIMPL;
    return st->backend->post_target(st, p, session_id, out);
}
