/*
 * us_blob.h - writing a file durably: SHA-256 and size computed on the way,
 * fsync, fsync of the directory. A large file goes to a temp file beside its
 * destination and is renamed; a small one (up to the first 256 KiB chunk) is
 * written at finish straight under its name, which nobody refers to before
 * the caller records it. Until published, the file is removed when the pool
 * is cleaned up (an aborted request leaves nothing behind). Pure: APR +
 * OpenSSL.
 */
#ifndef US_BLOB_H
#define US_BLOB_H

#include <apr_file_io.h>
#include <apr_pools.h>

#include "us_log.h"

typedef struct us_blob us_blob;

/* Creates dir if missing; the file is created by the first write that
 * fills a chunk (<dir>/.<name>.<pid>-<machine>.tmp), else by finish
 * (<dir>/<name>). */
apr_status_t us_blob_open(apr_pool_t *p, const char *dir, const char *name, us_blob **out);
apr_status_t us_blob_write(us_blob *b, const char *data, apr_size_t len);
/* Writes what is left, fsyncs and closes the file. */
apr_status_t us_blob_finish(us_blob *b);
/* Renames a temp file to <dir>/<name> and fsyncs dir: the file is now durable. */
apr_status_t us_blob_publish(us_blob *b);
/* Removes the unpublished file now (also done by the pool cleanup). */
void us_blob_discard(us_blob *b);

long long us_blob_size(const us_blob *b);
const char *us_blob_sha256_hex(const us_blob *b); /* after finish */
const char *us_blob_path(const us_blob *b);        /* the final path */
/* the file written and not yet published: the temp file, or the final path
 * of a small file; NULL before it is created and once published */
const char *us_blob_pending_path(const us_blob *b);

/* This machine in temp file names: 12 hex digits, a hash of the host name
 * and the boot id (the kernel whose pids the names hold). */
const char *us_blob_machine(void);

/* Another machine's temp file (nodes sharing a directory over NFS) is
 * taken for a dead writer's once unchanged for this long: its pid cannot
 * be asked here. Well above the late clear's grace at the default limits
 * (lease + 5 GiB at 1 MiB/s: about 1 h 26 min), after which the session's
 * files go anyway. */
#define US_BLOB_FOREIGN_STALL (apr_time_from_sec(6 * 3600))

/* Removes the temp files ".<name>.<pid>-<machine>.tmp" in dir whose writer
 * is gone (a crash, a hard restart): this machine's whose process is gone,
 * other machines' unchanged for US_BLOB_FOREIGN_STALL; names without a
 * machine (older) are judged by their pid. Returns how many. Failures to
 * read dir or remove a file are logged to lg (1202; NULL: not logged). */
int us_blob_sweep(apr_pool_t *p, const char *dir, const us_logger *lg);

/* Removes every file of dir, but the temp files of live writers when
 * keep_live (judged as by us_blob_sweep),
 * then dir itself if that left it empty; returns how many entries were
 * kept (0: dir is gone). For a session directory once its ingestion is
 * done (keep_live: an upload may still be arriving), and once no writer of
 * it can be alive (0: its pid may be an unrelated process's by now);
 * failures to remove a file are logged to lg (1203). */
int us_blob_clear_dir(apr_pool_t *p, const char *dir, int keep_live, const us_logger *lg);

#endif
