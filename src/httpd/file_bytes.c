/* file_bytes.c - the bytes of deleted workspace files, up to a bound per request. */
#include "file_bytes.h"
#include "us_storage.h"

us_file_bytes_result us_file_bytes_remove(request_rec *r, const us_srv_conf *c, us_db *db,
                                          const apr_array_header_t *ids)
{
    int n = ids->nelts < US_DELETE_BYTES_INLINE ? ids->nelts : US_DELETE_BYTES_INLINE;
    apr_array_header_t *gone = apr_array_make(r->pool, n > 0 ? n : 1, sizeof(const char *));
    apr_pool_t *one;
    apr_pool_create(&one, r->pool);
    for (int i = 0; i < n; i++) {
        const char *id = APR_ARRAY_IDX(ids, i, const char *);
        apr_status_t rv = us_storage_file_delete(c->storage, one, id);
        if (rv == APR_SUCCESS || APR_STATUS_IS_ENOENT(rv))
            APR_ARRAY_PUSH(gone, const char *) = id;
        apr_pool_clear(one);
    }
    apr_pool_destroy(one);
    us_file_bytes_result res = { gone->nelts, ids->nelts - gone->nelts, US_DB_OK };
    res.forgot = us_file_trash_forget(db, r->pool, gone);
    return res;
}
