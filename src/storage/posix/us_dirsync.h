/*
 * us_dirsync.h - fsync of a directory, shared by the threads that need the
 * same directory synced at the same time (after creating or renaming files
 * in it): one fsync that starts after a caller's change covers it, so
 * concurrent uploads into one session directory pay for one device flush
 * instead of one each. Per process; pure (POSIX + APR threads).
 */
#ifndef US_DIRSYNC_H
#define US_DIRSYNC_H

#include <apr_errno.h>

/* Returns once an fsync of dir that began after this call has finished:
 * APR_SUCCESS, or the error of such an fsync. */
apr_status_t us_dirsync(const char *dir);

/* The same in two steps, for a caller with other work in between (the
 * file's own fsync): begin right after changing dir, end when the change
 * must be durable. An fsync by anyone that began after begin covers it, so
 * end often has nothing left to wait for. Every begin needs an end or a
 * cancel; dir must stay valid until then. */
typedef struct us_dirsync_ticket {
    void *entry;
    const char *dir;
    unsigned long need;
} us_dirsync_ticket;

void us_dirsync_begin(const char *dir, us_dirsync_ticket *t);
apr_status_t us_dirsync_end(us_dirsync_ticket *t);
void us_dirsync_cancel(us_dirsync_ticket *t);

/* How many fsyncs of directories this process has run (for tests and
 * diagnostics). */
unsigned long us_dirsync_count(void);

/* Tests: replace the fsync itself (NULL restores it). */
void us_dirsync_set_op(apr_status_t (*op)(const char *dir));

#endif
