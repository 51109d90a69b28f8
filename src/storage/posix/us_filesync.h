/*
 * us_filesync.h - one sync of the file system shared by the small files
 * that concurrent uploads write into it, instead of an fsync each (Linux):
 * each file's writeback is started as soon as it is written
 * (sync_file_range), then one syncfs(2) of the file system followed by an
 * fsync of a directory on it (which ends with a flush of the device's
 * cache) makes every file written before it began durable - its data, its
 * inode and its directory entry. Generation counters as in us_dirsync: a
 * sync that began before a file was written does not count for it, and a
 * failed sync fails every file whose writing it may have seen. Where
 * syncfs is missing or does not report write errors (Linux before 5.8),
 * begin says so and the caller fsyncs its file itself. Per process; pure
 * (POSIX + APR threads).
 */
#ifndef US_FILESYNC_H
#define US_FILESYNC_H

#include <apr_errno.h>

typedef struct us_filesync_ticket {
    void *entry;
    unsigned long since; /* syncs finished at begin: a failure of any later one is ours */
} us_filesync_ticket;

/* Right after creating the file fd in a directory on root's file system,
 * before writing it: 1 when the group sync of that file system will make
 * it durable (the ticket is taken), 0 when the caller must fsync the file
 * and its directory itself (no syncfs, fd on another file system, out of
 * memory). A ticket needs no release. */
int us_filesync_begin(const char *root, int fd, us_filesync_ticket *t);

/* Once the file is written: starts its writeback, returns once a group
 * sync that began after this call has finished, then reads the file's own
 * write error. APR_SUCCESS, the error of any group sync that finished
 * after begin, or the file's; APR_ENOTIMPL: the file system takes no
 * group sync after all (nothing was synced: the caller fsyncs the file
 * and its directory, and later begins answer 0). */
apr_status_t us_filesync_end(us_filesync_ticket *t, int fd);

/* How many group syncs this process has run (for tests and diagnostics). */
unsigned long us_filesync_count(void);

/* Tests: replace the group sync itself (fd: root's directory; NULL
 * restores it). A replacement is used whatever the kernel. */
void us_filesync_set_op(apr_status_t (*op)(int fd));

#endif
