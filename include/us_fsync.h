/*
 * us_fsync.h - making names durable: a file created, linked or renamed
 * into a directory survives a crash only once that directory is synced
 * (pure POSIX).
 */
#ifndef US_FSYNC_H
#define US_FSYNC_H

#include <apr_errno.h>

/* fsync of a directory, at once: APR_SUCCESS or the error of the open or
 * of the fsync. */
apr_status_t us_fsync_dir(const char *dir);

/* fsync of the directory that holds path ("." for a name without a
 * slash, "/" for a name right under the root). */
apr_status_t us_fsync_parent(const char *path);

#endif
