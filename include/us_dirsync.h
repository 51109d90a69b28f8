/*
 * us_dirsync.h - fsync of a directory, shared by the threads that need the
 * same directory synced at the same time (after their renames into it):
 * one fsync that starts after a caller's rename covers that caller, so
 * concurrent uploads into one session directory pay for one device flush
 * instead of one each. Per process; pure (POSIX + pthreads).
 */
#ifndef US_DIRSYNC_H
#define US_DIRSYNC_H

#include <apr_errno.h>

/* Returns once an fsync of dir that began after this call has finished:
 * APR_SUCCESS, or the error of such an fsync. */
apr_status_t us_dirsync(const char *dir);

/* How many fsyncs of directories this process has run (for tests and
 * diagnostics). */
unsigned long us_dirsync_count(void);

/* Tests: replace the fsync itself (NULL restores it). */
void us_dirsync_set_op(apr_status_t (*op)(const char *dir));

#endif
