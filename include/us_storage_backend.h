/*
 * us_storage_backend.h - what a file-storage backend implements: one table
 * of functions, chosen by the name given to UploadSessionStorage. The front
 * (src/storage/us_storage.c) checks nothing and adds nothing: each function
 * of us_storage.h calls the entry of the same name here, so every guarantee
 * written there is the backend's to keep. A writer or reader of the backend
 * is its own opaque object (void *), wrapped by the front. Only the front
 * and the backends include this header.
 */
#ifndef US_STORAGE_BACKEND_H
#define US_STORAGE_BACKEND_H

#include "us_storage.h"

typedef struct us_storage_backend us_storage_backend;

/* A configured storage: the backends read conf (their own) and log. */
struct us_storage {
    const us_storage_backend *backend;
    void *conf;
    const us_logger *log;
    /* a stoppable handle's (us_storage_stoppable), else NULL: the flag its
     * requests are cut on, and whether a cut was logged (apr_atomic) */
    volatile apr_uint32_t *stop;
    volatile apr_uint32_t *cut_logged;
};

struct us_storage_backend {
    const char *name; /* UploadSessionStorage's first argument: "posix" */
    /* publishes worth running at once (us_storage_publish_width); 0 means 1 */
    int publish_width;
    /* the largest file a writer can store (us_storage_max_object_size); 0: no limit */
    long long max_object_size;

    /* ---- configuration and startup */
    apr_status_t (*configure)(apr_pool_t *p, const char *data_dir, const char *params,
                              void **conf, const char **err);
    apr_status_t (*prepare)(us_storage *st, apr_pool_t *p);
    apr_status_t (*check)(us_storage *st, apr_pool_t *p);
    int (*recover)(us_storage *st, apr_pool_t *p);
    /* may be NULL: nothing an operation leaves is retried later */
    void (*tidy)(us_storage *st, apr_pool_t *p);
    /* the local directories the children create files in (may be NULL: none) */
    apr_array_header_t *(*local_dirs)(const us_storage *st, apr_pool_t *p);
    /* the existing directory the children make temporary files in (may be
     * NULL: none) */
    const char *(*temp_dir)(const us_storage *st);

    /* ---- writing; w is the backend's writer */
    apr_status_t (*upload_create)(us_storage *st, apr_pool_t *p, const char *session_id,
                                  const char *blob, void **w);
    apr_status_t (*file_create)(us_storage *st, apr_pool_t *p, const char *file_id, void **w);
    apr_status_t (*write)(void *w, const char *data, apr_size_t len);
    apr_status_t (*finish)(void *w);
    apr_status_t (*commit)(void *w);
    void (*abandon)(void *w);
    long long (*writer_size)(const void *w);
    const char *(*writer_sha256_hex)(const void *w);
    const char *(*writer_where)(const void *w);

    /* ---- reading; *local may stay NULL, *r is the backend's reader */
    apr_status_t (*file_open)(us_storage *st, apr_pool_t *p, const char *file_id, void **r,
                              apr_off_t *size, apr_file_t **local);
    apr_status_t (*read_at)(void *r, apr_off_t off, char *buf, apr_size_t *len);

    /* ---- ingestion */
    apr_status_t (*upload_read)(us_storage *st, apr_pool_t *p, const char *session_id,
                                const char *blob, apr_size_t max, char **data, apr_size_t *len);
    apr_status_t (*file_read)(us_storage *st, apr_pool_t *p, const char *file_id, apr_size_t max,
                              char **data, apr_size_t *len);
    apr_status_t (*publish)(us_storage *st, apr_pool_t *p, const char *session_id,
                            const char *blob, const char *file_id, const char *etag,
                            long long size, int *moved);
    apr_status_t (*publish_sync)(us_storage *st, apr_pool_t *p);

    /* ---- removing */
    apr_status_t (*upload_delete)(us_storage *st, apr_pool_t *p, const char *session_id,
                                  const char *blob);
    apr_status_t (*file_delete)(us_storage *st, apr_pool_t *p, const char *file_id);
    int (*session_clear)(us_storage *st, apr_pool_t *p, const char *session_id);
    /* may be NULL: a session holds no place of its own */
    void (*session_tidy)(us_storage *st, apr_pool_t *p, const char *session_id);
    /* may be NULL: session_clear removes every unfinished file of a dead writer */
    int (*session_clear_late)(us_storage *st, apr_pool_t *p, const char *session_id);
    /* may be NULL: the late clear asks every session */
    apr_status_t (*sessions_holding)(us_storage *st, apr_pool_t *p, apr_hash_t **ids);
    apr_status_t (*session_list)(us_storage *st, apr_pool_t *p, const char *session_id,
                                 apr_array_header_t **blobs);
    apr_status_t (*session_objects)(us_storage *st, apr_pool_t *p, const char *session_id,
                                    apr_array_header_t **objects);
    /* may be NULL: the backend's files are never swept */
    apr_status_t (*files_page)(us_storage *st, apr_pool_t *p, const char *after, int limit,
                               apr_array_header_t **files, const char **next);

    /* ---- direct uploads; NULL when the backend takes none */
    apr_status_t (*post_target)(us_storage *st, apr_pool_t *p, const char *session_id,
                                us_storage_post_target *out);
};

/* The backends of this build (src/storage/<name>/). */
extern const us_storage_backend us_posix_storage;
extern const us_storage_backend us_s3_storage;

/* The backend called name, or NULL. */
const us_storage_backend *us_storage_backend_for(const char *name);

#endif
