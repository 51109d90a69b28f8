/*
 * us_posix.c - the posix storage backend: files in a local directory tree
 * (UploadSessionDataDir). The only place that knows the layout:
 *   <data_dir>/sessions/<session_id>/<blob>    a session's uploads
 *   <data_dir>/sessions/<session_id>/.<blob>.<pid>-<machine>.tmp   (unfinished, large)
 *   <data_dir>/files/<file_id>                 workspace files
 *   <data_dir>/files/.<file_id>.<pid>-<machine>.tmp      (unfinished, large)
 * Writers are us_blob (durable writes), name changes are made durable by
 * directory fsyncs (us_dirsync), publishing is a rename within one file
 * system.
 */
#include "us_storage_backend.h"
#include "us_blob.h"
#include "us_dirsync.h"
#include "us_fsync.h"
#include "us_dir_page.h"

#include <apr_strings.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    const char *data_dir;
    const char *sessions; /* <data_dir>/sessions */
    const char *files;    /* <data_dir>/files */
} px_conf;

typedef struct {
    us_storage *st;
    us_blob *blob;
    int committed;
} px_writer;

typedef struct {
    apr_file_t *f;
} px_reader;

static const px_conf *conf_of(const us_storage *st) { return st->conf; }

/* ---- the layout ------------------------------------------------------------- */

static const char *session_dir(const us_storage *st, apr_pool_t *p, const char *session_id)
{
    return apr_pstrcat(p, conf_of(st)->sessions, "/", session_id, NULL);
}

static const char *upload_path(const us_storage *st, apr_pool_t *p, const char *session_id,
                               const char *blob)
{
    return apr_pstrcat(p, conf_of(st)->sessions, "/", session_id, "/", blob, NULL);
}

static const char *file_path(const us_storage *st, apr_pool_t *p, const char *file_id)
{
    return apr_pstrcat(p, conf_of(st)->files, "/", file_id, NULL);
}

/* ---- configuration and startup --------------------------------------------- */

static apr_status_t px_configure(apr_pool_t *p, const char *data_dir, const char *params,
                                 void **conf, const char **err)
{
    if (params && *params) {
        *err = "posix storage takes no parameters (its directory is UploadSessionDataDir)";
        return APR_EINVAL;
    }
    if (!data_dir || !*data_dir) {
        *err = "posix storage needs a data directory (UploadSessionDataDir)";
        return APR_EINVAL;
    }
    px_conf *c = apr_pcalloc(p, sizeof(*c));
    c->data_dir = apr_pstrdup(p, data_dir);
    c->sessions = apr_pstrcat(p, data_dir, "/sessions", NULL);
    c->files = apr_pstrcat(p, data_dir, "/files", NULL);
    *conf = c;
    return APR_SUCCESS;
}

/* Makes dir under an existing parent; *made says whether this call did. */
static apr_status_t make_dir(const char *dir, apr_fileperms_t perms, apr_pool_t *p, int *made)
{
    apr_status_t rv = apr_dir_make(dir, perms, p);
    *made = rv == APR_SUCCESS;
    return APR_STATUS_IS_EEXIST(rv) ? APR_SUCCESS : rv;
}

/* The files and sessions directories, their entries in the data directory
 * durable before anything is written into them. */
static apr_status_t px_prepare(us_storage *st, apr_pool_t *p)
{
    const px_conf *c = conf_of(st);
    int made_files = 0, made_sessions = 0;
    apr_status_t rv = apr_dir_make_recursive(c->data_dir, APR_FPROT_OS_DEFAULT, p);
    if (rv != APR_SUCCESS && !APR_STATUS_IS_EEXIST(rv))
        return rv;
    if ((rv = make_dir(c->files, APR_FPROT_OS_DEFAULT, p, &made_files)) != APR_SUCCESS ||
        (rv = make_dir(c->sessions, APR_FPROT_OS_DEFAULT, p, &made_sessions)) != APR_SUCCESS)
        return rv;
    return made_files || made_sessions ? us_fsync_dir(c->data_dir) : APR_SUCCESS;
}

/* The data directory and the workspace files directory are directories
 * this process may create files in (the children run as httpd's User). */
static apr_status_t px_check(us_storage *st, apr_pool_t *p)
{
    const px_conf *c = conf_of(st);
    const char *const dirs[] = { c->data_dir, c->files };
    (void)p;
    for (int i = 0; i < 2; i++) {
        struct stat sb;
        if (stat(dirs[i], &sb) != 0)
            return APR_FROM_OS_ERROR(errno);
        if (!S_ISDIR(sb.st_mode))
            return APR_ENOTDIR;
        if (access(dirs[i], W_OK | X_OK) != 0)
            return APR_FROM_OS_ERROR(errno);
    }
    return APR_SUCCESS;
}

static apr_array_header_t *px_local_dirs(const us_storage *st, apr_pool_t *p)
{
    const px_conf *c = st->conf;
    apr_array_header_t *a = apr_array_make(p, 3, sizeof(const char *));
    APR_ARRAY_PUSH(a, const char *) = c->data_dir;
    APR_ARRAY_PUSH(a, const char *) = c->files;
    APR_ARRAY_PUSH(a, const char *) = c->sessions; /* made by the first upload */
    return a;
}

static int px_recover(us_storage *st, apr_pool_t *p)
{
    const px_conf *c = conf_of(st);
    apr_dir_t *sessions;
    apr_finfo_t se;
    int removed = us_blob_sweep(p, c->files, st->log);
    apr_status_t rv = apr_dir_open(&sessions, c->sessions, p);
    if (rv == APR_SUCCESS) {
        while (us_dir_next(sessions, &se, APR_FINFO_NAME | APR_FINFO_TYPE))
            if ((se.valid & APR_FINFO_TYPE) && se.filetype == APR_DIR && se.name[0] != '.')
                removed += us_blob_sweep(p, apr_pstrcat(p, c->sessions, "/", se.name, NULL),
                                         st->log);
        apr_dir_close(sessions);
    }
    else if (!APR_STATUS_IS_ENOENT(rv)) {
        us_log(st->log, US_LOG_WARN, rv, 1202, "startup sweep: cannot read %s", c->sessions);
    }
    if (removed)
        us_log(st->log, US_LOG_INFO, 0, 1201,
               "removed %d temp file(s) left by interrupted uploads in %s", removed, c->data_dir);
    return removed;
}

/* ---- writing ------------------------------------------------------------------- */

static apr_status_t open_writer(us_storage *st, apr_pool_t *p, const char *dir, const char *name,
                                void **out)
{
    px_writer *w = apr_pcalloc(p, sizeof(*w));
    apr_status_t rv = us_blob_open(p, dir, name, &w->blob);
    if (rv != APR_SUCCESS)
        return rv;
    w->st = st;
    *out = w;
    return APR_SUCCESS;
}

/* A session directory's mode while its entry in sessions/ may not be on
 * disk yet, and once it is: a writer that finds the first (the maker's
 * fsync of sessions/ may still be running, in another process) runs that
 * fsync itself instead of answering for a file a crash could take away
 * with its directory. */
#define SESSION_DIR_NEW (APR_FPROT_UREAD | APR_FPROT_UWRITE | APR_FPROT_UEXECUTE)
#define SESSION_DIR_DURABLE (SESSION_DIR_NEW | APR_FPROT_GREAD | APR_FPROT_GEXECUTE)

/* A directory of the data found missing (files/ or sessions/: a data file
 * system not mounted, or removed) while running: an outage of the storage,
 * logged (1207). */
static apr_status_t data_dir_gone(const us_storage *st, const char *dir, int e)
{
    us_log(st->log, US_LOG_WARN, APR_FROM_OS_ERROR(e), 1207, "the data directory %s is "
           "missing (not mounted?): the file storage is taken as down", dir);
    return APR_EAGAIN;
}

/* A name found missing (rv ENOENT) while a directory of the data is
 * missing too is an outage, not a missing file: taken as missing, the file
 * would be FAILED and its bytes cleared, though the directory may come
 * back. APR_EAGAIN then (data_dir_gone); else rv. */
static apr_status_t missing_or_down(const us_storage *st, apr_status_t rv)
{
    const px_conf *c = conf_of(st);
    struct stat sb;
    if (!APR_STATUS_IS_ENOENT(rv))
        return rv;
    if (stat(c->files, &sb) != 0)
        return data_dir_gone(st, c->files, errno);
    if (stat(c->sessions, &sb) != 0)
        return data_dir_gone(st, c->sessions, errno);
    return rv;
}

/* The session's directory, made if missing, its entry in sessions/ durable. */
static apr_status_t session_dir_ready(const us_storage *st, apr_pool_t *p, const char *dir)
{
    const px_conf *c = conf_of(st);
    apr_finfo_t fi;
    int made;
    apr_status_t rv = apr_stat(&fi, dir, APR_FINFO_PROT, p);
    if (rv == APR_SUCCESS && (fi.protection & APR_FPROT_GREAD))
        return APR_SUCCESS;
    if (APR_STATUS_IS_ENOENT(rv)) {
        rv = make_dir(dir, SESSION_DIR_NEW, p, &made);
        /* sessions/ was removed: made again, unless files/ is gone too (a
         * data file system not mounted) */
        struct stat sb;
        if (APR_STATUS_IS_ENOENT(rv) && stat(c->files, &sb) != 0)
            return data_dir_gone(st, c->files, errno);
        if (APR_STATUS_IS_ENOENT(rv) && (rv = px_prepare((us_storage *)st, p)) == APR_SUCCESS)
            rv = make_dir(dir, SESSION_DIR_NEW, p, &made);
    }
    else if (rv == APR_INCOMPLETE) {
        rv = APR_SUCCESS; /* no mode to read: synced as if new */
    }
    if (rv != APR_SUCCESS)
        return rv;
    if ((rv = us_dirsync(c->sessions)) != APR_SUCCESS)
        return rv;
    /* where the mode cannot be set, the next writer syncs sessions/ again */
    (void)apr_file_perms_set(dir, SESSION_DIR_DURABLE);
    return APR_SUCCESS;
}

static apr_status_t px_upload_create(us_storage *st, apr_pool_t *p, const char *session_id,
                                     const char *blob, void **w)
{
    const char *dir = session_dir(st, p, session_id);
    apr_status_t rv = session_dir_ready(st, p, dir);
    return rv == APR_SUCCESS ? open_writer(st, p, dir, blob, w) : rv;
}

static apr_status_t px_file_create(us_storage *st, apr_pool_t *p, const char *file_id, void **w)
{
    return open_writer(st, p, conf_of(st)->files, file_id, w);
}

static apr_status_t px_write(void *w, const char *data, apr_size_t len)
{
    return us_blob_write(((px_writer *)w)->blob, data, len);
}

static apr_status_t px_finish(void *w)
{
    return us_blob_finish(((px_writer *)w)->blob);
}

/* Removes a file under its final name; a failure other than "gone" is logged. */
static apr_status_t remove_file(const us_storage *st, int msgno, const char *what,
                                const char *path)
{
    if (unlink(path) == 0)
        return APR_SUCCESS;
    apr_status_t rv = APR_FROM_OS_ERROR(errno);
    if (!APR_STATUS_IS_ENOENT(rv))
        us_log(st->log, US_LOG_WARN, rv, msgno, "%s: cannot remove %s", what, path);
    return rv;
}

static apr_status_t px_commit(void *wv)
{
    px_writer *w = wv;
    apr_status_t rv = us_blob_publish(w->blob);
    if (rv == APR_SUCCESS)
        w->committed = 1;
    else /* a small file may be under its name already, its directory not synced */
        remove_file(w->st, 1206, "commit failed", us_blob_path(w->blob));
    return rv;
}

static void px_abandon(void *wv)
{
    px_writer *w = wv;
    if (w->committed) {
        w->committed = 0;
        remove_file(w->st, 1206, "abandoning a committed file", us_blob_path(w->blob));
    }
    else {
        us_blob_discard(w->blob);
    }
}

static long long px_writer_size(const void *w) { return us_blob_size(((const px_writer *)w)->blob); }

static const char *px_writer_sha256_hex(const void *w)
{
    return us_blob_sha256_hex(((const px_writer *)w)->blob);
}

static const char *px_writer_where(const void *w) { return us_blob_path(((const px_writer *)w)->blob); }

/* ---- reading -------------------------------------------------------------------- */

static apr_status_t px_file_open(us_storage *st, apr_pool_t *p, const char *file_id, void **r,
                                 apr_off_t *size, apr_file_t **local)
{
    px_reader *rd = apr_pcalloc(p, sizeof(*rd));
    apr_finfo_t fi;
    apr_status_t rv = apr_file_open(&rd->f, file_path(st, p, file_id),
                                    APR_FOPEN_READ | APR_FOPEN_BINARY | APR_FOPEN_SENDFILE_ENABLED,
                                    APR_OS_DEFAULT, p);
    if (rv != APR_SUCCESS)
        return rv;
    rv = apr_file_info_get(&fi, APR_FINFO_SIZE, rd->f);
    if (rv != APR_SUCCESS) {
        apr_file_close(rd->f);
        return rv;
    }
    *r = rd;
    *size = fi.size;
    *local = rd->f;
    return APR_SUCCESS;
}

static apr_status_t px_read_at(void *r, apr_off_t off, char *buf, apr_size_t *len)
{
    px_reader *rd = r;
    apr_status_t rv = apr_file_seek(rd->f, APR_SET, &off);
    if (rv == APR_SUCCESS)
        rv = apr_file_read_full(rd->f, buf, *len, len);
    return APR_STATUS_IS_EOF(rv) ? APR_SUCCESS : rv;
}

/* ---- ingestion ------------------------------------------------------------------- */

/* The whole file at path when it holds at most max bytes (us_storage.h). */
static apr_status_t read_whole(apr_pool_t *p, const char *path, apr_size_t max, char **data,
                               apr_size_t *len)
{
    apr_file_t *f;
    apr_finfo_t fi;
    apr_status_t rv = apr_file_open(&f, path, APR_FOPEN_READ | APR_FOPEN_BINARY, APR_OS_DEFAULT, p);
    if (rv != APR_SUCCESS)
        return rv;
    rv = apr_file_info_get(&fi, APR_FINFO_SIZE, f);
    if (rv == APR_SUCCESS && fi.size > (apr_off_t)max)
        rv = APR_INCOMPLETE;
    if (rv == APR_SUCCESS) {
        apr_size_t n = (apr_size_t)fi.size;
        char *buf = apr_palloc(p, n + 1);
        if (n > 0)
            rv = apr_file_read_full(f, buf, n, &n);
        if (rv == APR_SUCCESS) {
            buf[n] = '\0';
            *data = buf;
            *len = n;
        }
    }
    apr_file_close(f);
    return rv;
}

static apr_status_t px_upload_read(us_storage *st, apr_pool_t *p, const char *session_id,
                                   const char *blob, apr_size_t max, char **data, apr_size_t *len)
{
    return missing_or_down(st, read_whole(p, upload_path(st, p, session_id, blob), max, data, len));
}

static apr_status_t px_file_read(us_storage *st, apr_pool_t *p, const char *file_id,
                                 apr_size_t max, char **data, apr_size_t *len)
{
    return read_whole(p, file_path(st, p, file_id), max, data, len);
}

static apr_status_t px_publish(us_storage *st, apr_pool_t *p, const char *session_id,
                               const char *blob, const char *file_id, const char *etag,
                               long long size, int *moved)
{
    (void)size;
    (void)etag; /* no direct uploads: the row's blob is the file */
    const char *dst = file_path(st, p, file_id);
    struct stat sb;
    *moved = 0;
    if (rename(upload_path(st, p, session_id, blob), dst) == 0) {
        *moved = 1;
        return APR_SUCCESS;
    }
    apr_status_t rv = APR_FROM_OS_ERROR(errno);
    if (APR_STATUS_IS_ENOENT(rv) && stat(dst, &sb) == 0)
        return APR_SUCCESS; /* moved by an earlier run of this batch */
    return missing_or_down(st, rv);
}

static apr_status_t px_publish_sync(us_storage *st, apr_pool_t *p)
{
    (void)p;
    return us_fsync_dir(conf_of(st)->files);
}

/* ---- removing ------------------------------------------------------------------------ */

static apr_status_t px_upload_delete(us_storage *st, apr_pool_t *p, const char *session_id,
                                     const char *blob)
{
    return remove_file(st, 1205, "deleting a replaced upload", upload_path(st, p, session_id, blob));
}

static apr_status_t px_file_delete(us_storage *st, apr_pool_t *p, const char *file_id)
{
    return remove_file(st, 1204, "deleting a workspace file", file_path(st, p, file_id));
}

static int px_session_clear(us_storage *st, apr_pool_t *p, const char *session_id)
{
    return us_blob_clear_dir(p, session_dir(st, p, session_id), 1, st->log);
}

/* ENOTEMPTY (another upload's file) and ENOENT (cleared) leave it as is. */
static void px_session_tidy(us_storage *st, apr_pool_t *p, const char *session_id)
{
    (void)rmdir(session_dir(st, p, session_id));
}

/* No writer of the session is alive: a pid in a temp file's name is a
 * dead writer's, or by now another process's. */
static int px_session_clear_late(us_storage *st, apr_pool_t *p, const char *session_id)
{
    return us_blob_clear_dir(p, session_dir(st, p, session_id), 0, st->log);
}

/* The session directories (a session's first upload makes its directory,
 * a clear that empties it removes it). */
static apr_status_t px_sessions_holding(us_storage *st, apr_pool_t *p, apr_hash_t **ids)
{
    apr_dir_t *d;
    apr_finfo_t fi;
    *ids = apr_hash_make(p);
    apr_status_t rv = apr_dir_open(&d, conf_of(st)->sessions, p);
    if (rv != APR_SUCCESS)
        return APR_STATUS_IS_ENOENT(rv) ? APR_SUCCESS : rv;
    while ((rv = apr_dir_read(&fi, APR_FINFO_NAME | APR_FINFO_TYPE, d)) == APR_SUCCESS ||
           rv == APR_INCOMPLETE)
        if (fi.name[0] != '.') {
            const char *id = apr_pstrdup(p, fi.name);
            apr_hash_set(*ids, id, APR_HASH_KEY_STRING, id);
        }
    apr_dir_close(d);
    return APR_STATUS_IS_ENOENT(rv) ? APR_SUCCESS : rv;
}

/* Calls each for every blob in a session's directory (regular files; blobs
 * are UUIDs, temp files start with '.'), with the finfo fields `wanted`;
 * a directory that does not exist holds none. */
static apr_status_t walk_session(us_storage *st, apr_pool_t *p, const char *session_id,
                                 apr_int32_t wanted,
                                 void (*each)(apr_pool_t *p, const apr_finfo_t *fi, void *baton),
                                 void *baton)
{
    apr_dir_t *d;
    apr_finfo_t fi;
    apr_status_t rv = apr_dir_open(&d, session_dir(st, p, session_id), p);
    if (APR_STATUS_IS_ENOENT(rv))
        return APR_SUCCESS;
    if (rv != APR_SUCCESS)
        return rv;
    wanted |= APR_FINFO_NAME | APR_FINFO_TYPE;
    while (us_dir_next(d, &fi, wanted))
        if ((fi.valid & wanted) == wanted && fi.filetype == APR_REG && fi.name[0] != '.')
            each(p, &fi, baton); /* one lacking a field went meanwhile */
    apr_dir_close(d);
    return APR_SUCCESS;
}

static void add_blob(apr_pool_t *p, const apr_finfo_t *fi, void *blobs)
{
    APR_ARRAY_PUSH((apr_array_header_t *)blobs, const char *) = apr_pstrdup(p, fi->name);
}

static apr_status_t px_session_list(us_storage *st, apr_pool_t *p, const char *session_id,
                                    apr_array_header_t **blobs)
{
    *blobs = apr_array_make(p, 16, sizeof(const char *));
    return walk_session(st, p, session_id, 0, add_blob, *blobs);
}

static void add_object(apr_pool_t *p, const apr_finfo_t *fi, void *objects)
{
    us_storage_object *o = apr_array_push(objects);
    o->blob = apr_pstrdup(p, fi->name);
    o->size = (long long)fi->size;
    o->modified = fi->mtime;
    /* a replacement is another file renamed in: another inode, or a reused
     * inode with the new size and mtime */
    o->etag = apr_psprintf(p,
                           "\"%" APR_UINT64_T_HEX_FMT "-%" APR_UINT64_T_HEX_FMT
                           "-%" APR_UINT64_T_HEX_FMT "\"",
                           (apr_uint64_t)fi->inode, (apr_uint64_t)fi->size,
                           (apr_uint64_t)fi->mtime);
}

static apr_status_t px_session_objects(us_storage *st, apr_pool_t *p, const char *session_id,
                                       apr_array_header_t **objects)
{
    *objects = apr_array_make(p, 16, sizeof(us_storage_object));
    return walk_session(st, p, session_id, APR_FINFO_SIZE | APR_FINFO_INODE | APR_FINFO_MTIME,
                        add_object, *objects);
}

/* The files sweep's page of the workspace files (temp files start with '.'). */
static apr_status_t px_files_page(us_storage *st, apr_pool_t *p, const char *after, int limit,
                                  apr_array_header_t **files, const char **next)
{
    return us_dir_page(p, conf_of(st)->files, after, limit, files, next);
}

const us_storage_backend us_posix_storage = {
    .name = "posix",
    .configure = px_configure,
    .prepare = px_prepare,
    .local_dirs = px_local_dirs,
    .check = px_check,
    .recover = px_recover,
    .upload_create = px_upload_create,
    .file_create = px_file_create,
    .write = px_write,
    .finish = px_finish,
    .commit = px_commit,
    .abandon = px_abandon,
    .writer_size = px_writer_size,
    .writer_sha256_hex = px_writer_sha256_hex,
    .writer_where = px_writer_where,
    .file_open = px_file_open,
    .read_at = px_read_at,
    .upload_read = px_upload_read,
    .file_read = px_file_read,
    .publish = px_publish,
    .publish_sync = px_publish_sync,
    .upload_delete = px_upload_delete,
    .file_delete = px_file_delete,
    .session_clear = px_session_clear,
    .session_tidy = px_session_tidy,
    .session_clear_late = px_session_clear_late,
    .sessions_holding = px_sessions_holding,
    .session_list = px_session_list,
    .session_objects = px_session_objects,
    .files_page = px_files_page,
};
