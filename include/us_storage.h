/*
 * us_storage.h - file storage, backend-neutral: where the bytes of uploads
 * and workspace files live. Each function dispatches to the backend chosen
 * by name (UploadSessionStorage; us_storage_backend.h, src/storage/<name>/).
 * Two kinds of file:
 *   - a session upload: (session id, blob), blob a fresh UUID per upload;
 *     the store maps the upload's name to its current blob;
 *   - a workspace file: its file id.
 * Callers never see where a file lives (paths, keys): only the backend
 * builds them. Pure: APR only, no httpd headers.
 *
 * Guarantees are stated per operation below, in the style of us_store.h:
 * what a caller can rely on when other threads, processes or a crash
 * interfere. Every function returns an APR status; APR_ENOENT always means
 * "no such file". A failure says nothing changed unless said otherwise.
 */
#ifndef US_STORAGE_H
#define US_STORAGE_H

#include <apr_file_io.h>
#include <apr_hash.h>
#include <apr_pools.h>
#include <apr_tables.h>

#include "us_log.h"
#include "us_sigv4.h"

typedef struct us_storage us_storage;
typedef struct us_storage_writer us_storage_writer;
typedef struct us_storage_reader us_storage_reader;

/* ---- configuration and startup --------------------------------------------- */

/* 1 when this build has the backend called name ("posix"), else 0. */
int us_storage_backend_known(const char *name);

/* The storage served by backend name, for the data directory data_dir and
 * the backend's own parameters (params: NULL or "" for none; posix takes
 * none). APR_EINVAL with *err ("no storage backend 'x' in this build", or
 * the backend's reason) otherwise. Nothing is touched on disk. Call in the
 * parent; the children inherit the result. */
apr_status_t us_storage_configure(apr_pool_t *p, const char *name, const char *data_dir,
                                  const char *params, us_storage **out, const char **err);

/* 1 when rv says the storage did not answer (refused, timed out, reset,
 * or answered "unavailable"): nothing was decided, try again later. Every
 * backend reports an outage with one of these statuses. */
int us_storage_unavailable(apr_status_t rv);

/* 1 when a publish's rv says the storage answered and refused that one
 * object, where trying again is not expected to help: s3, a 4xx answer
 * other than 401, 403, 404, 408, 409 and 429 (and not one of the error codes
 * S3 clients retry, nor one about the credentials), which it reports as
 * APR_EGENERAL; posix, the destination name taken by a directory (EISDIR,
 * ENOTEMPTY, EEXIST). Never an outage (us_storage_unavailable) and never a
 * refusal of the credentials or of a whole directory (APR_EACCES): those
 * concern every file alike. */
int us_storage_refused(apr_status_t rv);

/* The backend's name, for logs. */
const char *us_storage_name(const us_storage *st);

/* Where storage messages (12xx) go; NULL drops them. lg must outlive st. */
void us_storage_set_logger(us_storage *st, const us_logger *lg);

/* Creates what the backend needs before files are published (posix: the
 * workspace files directory). Idempotent; safe against a concurrent call. */
apr_status_t us_storage_prepare(us_storage *st, apr_pool_t *p);

/* Whether the storage answers and this process can write to it (a health
 * check: cheap, no side effect). APR_SUCCESS or the reason it cannot. */
apr_status_t us_storage_check(us_storage *st, apr_pool_t *p);

/* The local directories (const char *) the children create files in, each
 * existing once us_storage_prepare ran or created on demand in a writable
 * one before it; empty for a remote store. For the startup check as
 * httpd's User. */
apr_array_header_t *us_storage_local_dirs(const us_storage *st, apr_pool_t *p);

/* The directory the children make temporary files in, which must exist
 * (the s3 backend's parts past its part memory: $TMPDIR, else /var/tmp);
 * NULL when the backend makes none. For the startup check as httpd's User. */
const char *us_storage_temp_dir(const us_storage *st);

/* Removes what writers of dead processes left (a crash, a hard restart):
 * never a committed file, never the unfinished file of a live writer (a
 * graceful restart recovers while the old children still write). Returns
 * how many it removed and logs that number (1201). */
int us_storage_recover(us_storage *st, apr_pool_t *p);

/* Tries again what operations of this process could not finish while the
 * storage was away (s3: the abort of an abandoned multipart upload). Called
 * now and then by a background thread; p is its own. */
void us_storage_tidy(us_storage *st, apr_pool_t *p);

/* ---- direct uploads ---------------------------------------------------------- */

/* Where a client uploads a session's files straight into the storage, with
 * an S3 POST form signed by the caller (us_sigv4_post_policy): the POST URL
 * (path-style: endpoint/bucket), the bucket, the key prefix of the
 * session's uploads (an upload's blob is what follows it: the file name)
 * and the credentials to sign with. The strings live in p or as long as st. */
typedef struct {
    const char *url;
    const char *bucket;
    const char *key_prefix;
    us_sigv4_credentials cred;
} us_storage_post_target;

/* The direct-upload target of session_id; APR_ENOTIMPL when the backend
 * takes no direct uploads (posix). Touches nothing. */
apr_status_t us_storage_post_target_of(us_storage *st, apr_pool_t *p, const char *session_id,
                                       us_storage_post_target *out);

/* ---- writing ----------------------------------------------------------------
 * A writer takes the bytes of one file in order, hashing them on the way.
 * While it is being written (up to finish) nothing is visible under its
 * final name. Between finish and commit a backend may already have the file
 * there (posix writes a small file straight under its name: no rename); it
 * is durable, and may be referred to (recorded in the store), only once
 * commit returns APR_SUCCESS - the names are fresh, so nobody looks them up
 * before. Until commit a crash leaves at most a leftover that
 * us_storage_recover or a session clear removes; cleaning up p abandons an
 * uncommitted file. */

/* A writer for a session upload; blob must be fresh (no file of the session
 * has it). */
apr_status_t us_storage_upload_create(us_storage *st, apr_pool_t *p, const char *session_id,
                                      const char *blob, us_storage_writer **out);
/* A writer for a new workspace file (POST /files); file_id must be fresh. */
apr_status_t us_storage_file_create(us_storage *st, apr_pool_t *p, const char *file_id,
                                    us_storage_writer **out);

/* Appends; once one write fails every later one returns its error. */
apr_status_t us_storage_write(us_storage_writer *w, const char *data, apr_size_t len);

/* Writes what is left and makes the content durable (not yet its name).
 * The size and sha256 are final from here on, whatever it returns. */
apr_status_t us_storage_finish(us_storage_writer *w);

/* After a successful finish: the file appears under its final name, whole,
 * and that name is durable when this returns APR_SUCCESS (a crash after it
 * keeps the file). Readers never see a partial file. Concurrent commits
 * into one session share the cost of making names durable. On failure
 * nothing is left under the final name. */
apr_status_t us_storage_commit(us_storage_writer *w);

/* Removes what w wrote, committed or not (a commit the store then refused:
 * nothing refers to the file). Never fails; what cannot be removed is
 * logged (1206) and left to us_storage_recover or a session clear. */
void us_storage_abandon(us_storage_writer *w);

/* Removes the session's place in the storage if it holds nothing (posix:
 * its empty directory), quietly. For a writer abandoned because the store
 * refused its commit (the session no longer open): its file kept that place
 * past the session's clear. */
void us_storage_session_tidy(us_storage *st, apr_pool_t *p, const char *session_id);

long long us_storage_writer_size(const us_storage_writer *w);      /* bytes taken */
const char *us_storage_writer_sha256_hex(const us_storage_writer *w); /* after finish */
/* Where the file goes, for log messages only (posix: its path). */
const char *us_storage_writer_where(const us_storage_writer *w);

/* ---- reading a workspace file ---------------------------------------------- */

/* Opens a committed workspace file for reading in p (closed with p). A file
 * deleted meanwhile reads as it was opened (posix: the open descriptor) or
 * fails with an error; it never reads as another file's bytes. */
apr_status_t us_storage_file_open(us_storage *st, apr_pool_t *p, const char *file_id,
                                  us_storage_reader **out);
apr_off_t us_storage_reader_size(const us_storage_reader *r);
/* The local file, opened for sendfile, when the backend has one (posix);
 * NULL otherwise: read with us_storage_read_at. */
apr_file_t *us_storage_reader_file(const us_storage_reader *r);
/* Up to *len bytes from offset off; *len is what was read (0 at the end). */
apr_status_t us_storage_read_at(us_storage_reader *r, apr_off_t off, char *buf, apr_size_t *len);

/* ---- ingestion --------------------------------------------------------------- */

/* The whole content of a committed session upload into *data (NUL added,
 * not counted in *len), when it holds at most max bytes; APR_INCOMPLETE when
 * it holds more, APR_ENOENT when it is absent. For sidecars. */
apr_status_t us_storage_upload_read(us_storage *st, apr_pool_t *p, const char *session_id,
                                    const char *blob, apr_size_t max, char **data,
                                    apr_size_t *len);

/* The whole content of a committed workspace file into *data (NUL added,
 * not counted in *len), when it holds at most max bytes: one request where
 * us_storage_file_open and us_storage_read_at take two (s3: a HEAD, then a
 * GET). APR_INCOMPLETE when it holds more, APR_ENOENT when it is absent. */
apr_status_t us_storage_file_read(us_storage *st, apr_pool_t *p, const char *file_id,
                                  apr_size_t max, char **data, apr_size_t *len);

/* Makes the session upload blob the workspace file file_id, moving it: the
 * upload is gone afterwards. Idempotent: a replay after a crash finds the
 * file published already and returns APR_SUCCESS with *moved 0 (*moved is
 * 1 when this call moved it). APR_ENOENT: neither exists. Atomic: a crash
 * leaves either the upload or the workspace file, never both or neither
 * visible as complete. Durable only after us_storage_publish_sync.
 * etag (may be NULL): only the blob with this etag (as listed) is
 * published; a blob replaced since is not (s3: the copy carries
 * x-amz-copy-source-if-match; answered 412, the published file counts as
 * above, else APR_ENOENT). posix takes no direct uploads and ignores it.
 * size (the blob's bytes, as recorded) chooses how s3 copies: above
 * CopyObject's 5 GiB, in parts (UploadPartCopy), each part pinned to etag;
 * the destination key is the same either way, so a replay of either finds
 * it. */
apr_status_t us_storage_publish(us_storage *st, apr_pool_t *p, const char *session_id,
                                const char *blob, const char *file_id, const char *etag,
                                long long size, int *moved);

/* How many publishes (with what a caller reads of the file after each)
 * are worth running at once from one caller, each on its own thread: 1 when
 * a publish is local work (posix: a rename), more when it waits on the
 * network (s3: a copy and a delete, each a round trip). Publishes of
 * different files never depend on each other. */
int us_storage_publish_width(const us_storage *st);

/* The largest file one writer can store, in bytes (s3: 10,000 parts of
 * the part size); 0 when the backend sets no limit of its own. */
long long us_storage_max_object_size(const us_storage *st);

/* A handle on st whose requests are cut short once *stop is set (stop
 * outlives the handle; apr_atomic): the request in flight fails at once,
 * as does every later call through the handle, with APR_EINTR - a stopping
 * process waits for no copy of gigabytes. A cut call leaves what a failure
 * of that call leaves (us_storage_publish: the upload still there, or it
 * and the workspace file both; a replay publishes it again), never a
 * partial file under a final name; s3 aborts the multipart upload of a
 * copy in parts cut between or inside its parts with one request that is
 * not cut (what it cannot abort is left to us_storage_tidy, then to the
 * sweep of multipart uploads, us_storage_recover and
 * us_storage_session_clear_late). The first cut of a handle is logged at
 * info (1220); posix calls are local and never cut. The handle lives in p
 * and shares everything else with st. */
us_storage *us_storage_stoppable(const us_storage *st, apr_pool_t *p, volatile apr_uint32_t *stop);

/* Makes every publish of this process that returned before this call
 * durable (posix: one fsync of the workspace directory per batch). Call
 * before the store records the files as FINISHED. */
apr_status_t us_storage_publish_sync(us_storage *st, apr_pool_t *p);

/* ---- removing ------------------------------------------------------------------ */

/* Deletes a session upload (replaced by a later upload of the same name).
 * APR_ENOENT when it is gone already; other failures are logged (1205). */
apr_status_t us_storage_upload_delete(us_storage *st, apr_pool_t *p, const char *session_id,
                                      const char *blob);

/* Deletes a workspace file (replaced by OVERWRITE, or not recorded).
 * APR_ENOENT when it is gone already; other failures are logged (1204). A
 * reader that opened it before may finish reading. */
apr_status_t us_storage_file_delete(us_storage *st, apr_pool_t *p, const char *file_id);

/* Once a session is done: removes every upload left of it (failed files,
 * sidecars, files a crash left unrecorded) but the unfinished files of live
 * writers (an upload still arriving for the closed session fails and cleans
 * up after itself). Returns how many entries stayed (0: nothing of the
 * session is left). Failures to remove are logged (1203). */
int us_storage_session_clear(us_storage *st, apr_pool_t *p, const char *session_id);

/* The last clear, once no writer of the session can be alive (its POST
 * policy long dead): a session clear that also removes the unfinished
 * files writers killed mid-upload left (s3: the multipart uploads under the
 * session's prefix, none when the store refuses to list them, 403, or does
 * not implement it, 501: logged once per process, 1120; posix: its temp
 * files whatever pid their names hold, a dead writer's or by now an
 * unrelated process's). Returns how many entries stayed; failures are
 * logged (1203). */
int us_storage_session_clear_late(us_storage *st, apr_pool_t *p, const char *session_id);

/* The sessions anything is left of in the storage, as a set of session ids
 * (keys and values const char *): s3, the session prefixes holding an
 * object (one ListObjectsV2 delimited by session: a page per 1,000
 * sessions holding one) or an unfinished multipart upload (one
 * ListMultipartUploads: a page per 1,000 uploads); posix, the session
 * directories. For the last clear of many sessions at
 * once: a session due it (no writer of it alive) and not in the set has
 * nothing to clear. Not a snapshot: what a live session writes meanwhile
 * may be in it or not. A refused listing of the multipart uploads (403,
 * 501) counts as none, as us_storage_session_clear_late takes it.
 * APR_ENOTIMPL when the backend cannot tell; another failure when a
 * listing failed (then the caller asks each session). */
apr_status_t us_storage_sessions_holding(us_storage *st, apr_pool_t *p, apr_hash_t **ids);

/* The blobs of a session's committed uploads, in no order (const char *),
 * without files still being written (those between finish and commit may
 * be listed). A session never written to has none. */
apr_status_t us_storage_session_list(us_storage *st, apr_pool_t *p, const char *session_id,
                                     apr_array_header_t **blobs);

/* One committed object of a session, as listed. etag identifies this
 * content of the blob: replacing the blob changes it (s3: the ETag, quotes
 * kept; posix: inode, size and mtime). */
typedef struct {
    const char *blob;
    long long size;
    const char *etag;
    apr_time_t modified;           /* when it was written (s3: LastModified, whole seconds) */
} us_storage_object;

/* The session's committed objects with size and etag, in no order
 * (us_storage_object), listed as us_storage_session_list lists blobs, every
 * page of the listing (s3: ListObjectsV2 continuation), and (s3) the keys
 * deeper under its prefix, their blob holding a '/'. Not a snapshot:
 * objects written during the listing may be in it or not; the ingest worker
 * records one listing as the truth (docs/design-s3-listing.md). */
apr_status_t us_storage_session_objects(us_storage *st, apr_pool_t *p, const char *session_id,
                                        apr_array_header_t **objects);

/* One stored workspace file, as a page of the files lists it. */
typedef struct {
    const char *file_id;
    apr_time_t modified; /* when its bytes were last written (s3: LastModified) */
} us_storage_file;

/* Up to limit (> 0) stored workspace files (us_storage_file) in file-id
 * order, the first after `after` ("" or NULL: from the first), for the sweep
 * of files no row refers to (us_files_sweep.h). *next: where the next page
 * starts, NULL once this page reached the end. Not a snapshot: a file
 * committed or deleted during the listing may be in it or not. Atomic
 * against writers: a file is listed only once its bytes are whole under
 * its name (s3: a PUT, a completed multipart upload or a copy; posix: a
 * rename, or a small file's direct write, which is whole before commit),
 * never a writer's temporary; a file deleted before the listing began is
 * not listed. APR_ENOTIMPL when the backend cannot list its files. */
apr_status_t us_storage_files_page(us_storage *st, apr_pool_t *p, const char *after, int limit,
                                   apr_array_header_t **files, const char **next);

#endif
