/*
 * us_filesync.c - see us_filesync.h. One entry per root (the data
 * directory: one or two per process), kept for the life of the process
 * with a descriptor of root open: syncfs(2) reports a write error to each
 * descriptor once, so errors that happen between two syncs reach the next
 * one on this descriptor, whoever else saw them. `started` counts syncs
 * begun, `finished` the last one completed; a file written when `started`
 * was S needs sync S + 1, and fails if any sync after the `finished` of
 * its begin failed (such a sync may have written, and lost, its pages).
 */
#include "us_filesync.h"
#include "us_lasting_pool.h"

#include <apr_atomic.h>
#include <apr_strings.h>
#include <apr_thread_cond.h>
#include <apr_thread_mutex.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#if defined(__linux__) && defined(SYNC_FILE_RANGE_WRITE)
#define US_HAVE_SYNCFS 1
#endif

typedef struct entry {
    char *root;
    int fd;                        /* root, open for the process's life */
    dev_t dev;
    int disabled;                  /* the file system refused syncfs */
    unsigned long started, finished;
    unsigned long ok_gen;          /* the last sync that succeeded */
    unsigned long failed_gen;      /* the last sync that failed */
    apr_status_t failed_rv;
    int running;
    apr_thread_cond_t *done;
    struct entry *next;
} entry;

static volatile void *mu;
static apr_pool_t *entry_pool;
/* kept for the leak checker (see us_lasting_pool.h) */
static apr_allocator_t *volatile entry_allocator;
static entry *entries;
static volatile apr_uint32_t syncs;
static int kernel_ok = -1;         /* under mu: syncfs reports write errors */

/* syncfs writes and waits for everything dirty on the file system; on
 * some (ext4 without a journal) its last writes, the inode tables, come
 * after its cache flush. An fsync always ends with one (ext4: for a
 * directory, a journal commit), which makes them durable too. */
static apr_status_t group_sync(int fd)
{
#ifdef US_HAVE_SYNCFS
    if (syncfs(fd) != 0 || fsync(fd) != 0)
        return errno == ENOSYS || errno == EINVAL ? APR_ENOTIMPL : APR_FROM_OS_ERROR(errno);
    return APR_SUCCESS;
#else
    (void)fd;
    return APR_ENOTIMPL;
#endif
}

static apr_status_t (*sync_op)(int fd) = group_sync;

void us_filesync_set_op(apr_status_t (*op)(int fd))
{
    sync_op = op ? op : group_sync;
}

unsigned long us_filesync_count(void)
{
    return apr_atomic_read32(&syncs);
}

/* syncfs reports write errors from Linux 5.8 on; before, it returned 0
 * whatever happened, which would tell a waiter its lost file is safe. */
static int kernel_reports_errors(void)
{
#ifdef US_HAVE_SYNCFS
    struct utsname u;
    char *end;
    if (uname(&u) != 0)
        return 0;
    long major = strtol(u.release, &end, 10);
    long minor = *end == '.' ? strtol(end + 1, NULL, 10) : 0;
    return major > 5 || (major == 5 && minor >= 8);
#else
    return 0;
#endif
}

/* Locks mu, making it first if need be; NULL when it cannot be made. */
static apr_thread_mutex_t *lock(void)
{
    apr_thread_mutex_t *m = apr_atomic_casptr(&mu, NULL, NULL);
    if (!m) {
        apr_allocator_t *a;
        apr_pool_t *p;
        if (us_lasting_pool_create(&p, &a) != APR_SUCCESS)
            return NULL;
        if (apr_thread_mutex_create(&m, APR_THREAD_MUTEX_DEFAULT, p) != APR_SUCCESS) {
            apr_pool_destroy(p);
            return NULL;
        }
        apr_thread_mutex_t *won = apr_atomic_casptr(&mu, m, NULL);
        if (won) { /* another thread made it first */
            apr_pool_destroy(p);
            m = won;
        }
        else {
            apr_thread_mutex_lock(m);
            entry_pool = p; /* first under the lock: nobody uses it before */
            entry_allocator = a;
            return m;
        }
    }
    apr_thread_mutex_lock(m);
    return m;
}

/* Under mu: root's entry, made (and root opened) by its first caller;
 * NULL when root cannot be opened or memory is short. */
static entry *entry_get(const char *root)
{
    entry *e = entries;
    while (e && strcmp(e->root, root) != 0)
        e = e->next;
    if (e)
        return e;
    struct stat sb;
    int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    e = apr_pcalloc(entry_pool, sizeof(*e));
    if (fstat(fd, &sb) != 0 || apr_thread_cond_create(&e->done, entry_pool) != APR_SUCCESS) {
        close(fd);
        return NULL; /* e stays in the pool, unused */
    }
    e->root = apr_pstrdup(entry_pool, root);
    e->fd = fd;
    e->dev = sb.st_dev;
    e->next = entries;
    entries = e;
    return e;
}

int us_filesync_begin(const char *root, int fd, us_filesync_ticket *t)
{
    struct stat sb;
    t->entry = NULL;
    if (fstat(fd, &sb) != 0)
        return 0;
    apr_thread_mutex_t *m = lock();
    if (!m)
        return 0;
    if (kernel_ok < 0)
        kernel_ok = kernel_reports_errors();
    entry *e = kernel_ok || sync_op != group_sync ? entry_get(root) : NULL;
    if (e && !e->disabled && e->dev == sb.st_dev) {
        t->entry = e;
        t->since = e->finished;
    }
    apr_thread_mutex_unlock(m);
    return t->entry != NULL;
}

/* The writeback of fd: start it (wait 0), or wait for it and read the
 * file's write error (wait 1; the file's own record of it, which no other
 * caller's sync can take). Where the call is missing, 0: the group sync
 * writes the file anyway, and its error reaches the group. */
static apr_status_t file_writeback(int fd, int wait)
{
#ifdef US_HAVE_SYNCFS
    unsigned int flags = wait ? SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
                                    SYNC_FILE_RANGE_WAIT_AFTER
                              : SYNC_FILE_RANGE_WRITE;
    if (sync_file_range(fd, 0, 0, flags) == 0 || errno == EINVAL || errno == ESPIPE ||
        errno == ENOSYS)
        return APR_SUCCESS;
    return APR_FROM_OS_ERROR(errno);
#else
    (void)fd;
    (void)wait;
    return APR_SUCCESS;
#endif
}

apr_status_t us_filesync_end(us_filesync_ticket *t, int fd)
{
    entry *e = t->entry;
    if (!e)
        return APR_ENOTIMPL;
    apr_status_t rv = file_writeback(fd, 0);
    if (rv != APR_SUCCESS)
        return rv;
    apr_thread_mutex_t *m = lock(); /* made at begin: e exists */
    t->entry = NULL;
    unsigned long need = e->started + 1; /* a running sync may have begun before our write */
    while (e->finished < need && !e->disabled) {
        if (e->running) {
            apr_thread_cond_wait(e->done, m);
            continue;
        }
        /* nobody is syncing: run the next one (>= need) for everyone */
        unsigned long gen = ++e->started;
        e->running = 1;
        apr_atomic_inc32(&syncs);
        apr_thread_mutex_unlock(m);
        rv = sync_op(e->fd);
        apr_thread_mutex_lock(m);
        e->running = 0;
        e->finished = gen;
        if (rv == APR_SUCCESS)
            e->ok_gen = gen;
        else if (rv == APR_ENOTIMPL)
            e->disabled = 1;
        else {
            e->failed_gen = gen;
            e->failed_rv = rv;
        }
        apr_thread_cond_broadcast(e->done);
    }
    if (e->failed_gen > t->since)
        rv = e->failed_rv;
    else if (e->ok_gen >= need)
        rv = APR_SUCCESS;
    else
        rv = APR_ENOTIMPL; /* refused before a sync covered us: nothing synced */
    apr_thread_mutex_unlock(m);
    if (rv == APR_SUCCESS)
        rv = file_writeback(fd, 1);
    return rv;
}
