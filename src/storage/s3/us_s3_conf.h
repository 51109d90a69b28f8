/*
 * us_s3_conf.h - the s3 backend's configuration, parsed from the
 * UploadSessionStorage s3 parameters and the credentials file, and the key
 * layout in the bucket:
 *   PREFIX/sessions/<session_id>/<blob>   a session's uploads
 *   PREFIX/files/<file_id>                workspace files
 */
#ifndef US_S3_CONF_H
#define US_S3_CONF_H

#include "us_storage_backend.h"
#include "us_sigv4.h"
#include "us_s3_aborts.h"
#include "us_s3_spill.h"

typedef struct {
    const char *endpoint;   /* http://127.0.0.1:7480, no trailing slash */
    const char *host;       /* 127.0.0.1:7480, the signed Host header */
    const char *bucket;
    const char *prefix;     /* "" or "p/" */
    us_sigv4_credentials cred;
    us_s3_aborts *aborts;   /* uploads whose abort failed, tried again by the tidy */
    us_s3_budget *parts;    /* the memory this process's writers may fill parts in */
    const char *spill_dir;  /* where parts past it are filled: $TMPDIR, else /var/tmp */
} us_s3_conf;

static inline const us_s3_conf *us_s3_conf_of(const us_storage *st) { return st->conf; }

/* The backend's configure: params "<endpoint URL> <bucket> [region=R]
 * [credentials=PATH] [prefix=P] [part_memory=BYTES]" into *conf, or an
 * error in *err. Initialises libcurl: before any thread exists. */
apr_status_t us_s3_configure(apr_pool_t *p, const char *data_dir, const char *params,
                             void **conf, const char **err);

/* PREFIX/sessions/<session_id>/ */
const char *us_s3_session_prefix(const us_storage *st, apr_pool_t *p, const char *session_id);

/* PREFIX/sessions/<session_id>/<blob> */
const char *us_s3_upload_key(const us_storage *st, apr_pool_t *p, const char *session_id,
                             const char *blob);

/* PREFIX/files/<file_id> */
const char *us_s3_file_key(const us_storage *st, apr_pool_t *p, const char *file_id);

#endif
