/*
 * file_bytes.h - the bytes of workspace files a store change has just
 * deleted (DELETE /files, DELETE /files/{id}, a workspace delete), removed
 * inside the request up to a bound; the rest is the ingest workers' trash
 * sweep's, which also covers a crash.
 */
#ifndef US_FILE_BYTES_H
#define US_FILE_BYTES_H

#include "us_module.h"
#include "us_store.h"

/* the bytes a delete removes before answering: on s3 each is a request or
 * two to the object store, which must not make one answer wait for the
 * whole workspace */
#define US_DELETE_BYTES_INLINE 256

typedef struct {
    int removed;    /* files whose bytes are gone (or were already) */
    int left;       /* ids left to the trash sweep: beyond the bound, or failed */
    us_db_rc forgot; /* us_file_trash_forget of the removed ones */
} us_file_bytes_result;

/* Removes the bytes of the first US_DELETE_BYTES_INLINE of ids (each
 * storage call in a pool of its own, cleared after it), then forgets
 * those in the trash. Logs nothing: the caller says what it deleted. */
us_file_bytes_result us_file_bytes_remove(request_rec *r, const us_srv_conf *c, us_db *db,
                                          const apr_array_header_t *ids);

#endif
