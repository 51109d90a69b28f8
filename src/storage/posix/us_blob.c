/* us_blob.c - durable file writes (pure). */
#include "us_blob.h"
#include "us_buf.h"
#include "us_dir_page.h"
#include "us_dirsync.h"

#include <apr_portable.h>
#include <apr_strings.h>
#include <apr_thread_cond.h>
#include <apr_thread_mutex.h>
#include <apr_thread_proc.h>
#include <openssl/evp.h>

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <fcntl.h>
#include <pthread.h> /* pthread_sigmask */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

/* Small files (the whole content fits in the first chunk) are written at
 * finish, straight under their final name: one create, one write, one
 * fsync - no temp file and no rename, whose two directory updates (and the
 * directory lock they take) cost more than the write itself with many
 * small uploads into one session. The name is a fresh UUID nobody refers to until the
 * store records it, so a half-written file is never seen; a crash between
 * the create and the fsync leaves an unreferenced file, as a crash between
 * a rename and the store's commit always could.
 *
 * The request thread copies the body into chunks; each full chunk is
 * hashed and written, in order. Small files: inline, at finish. Once a file
 * fills its first chunk, two threads of its own take the chunks: a hasher
 * and a writer, each reading every chunk, neither waiting for the other.
 * The request thread then only reads and copies: with SHA-NI, SHA-256 runs
 * at about 1.4 GB/s on one CPU, which alone held a request thread that
 * also hashed below what the disk and mod_dav reach
 * (bench/p3_upload_callgrind.py: the hash is 96 % of the instructions of
 * an upload). The chunks form a ring: memory stays at RING chunks whatever
 * the size, and a slow disk or hasher slows the reader. The writer takes up
 * to BATCH chunks per writev(2), so a slow disk gets bigger writes while the
 * reader fills the rest of the ring.
 *
 * A large file is written with O_DIRECT where the file system takes it: the
 * disk reads the chunks straight from our buffers, instead of a copy into
 * the page cache that cost as much CPU as the hashing and pushed other
 * files out of the cache. The chunks are aligned for it; the last, partial
 * one goes through the page cache, and so does everything on a file system
 * that refuses O_DIRECT (tmpfs, some network file systems). The disk, not
 * the queue, sets the pace of a large file: a longer ring would cost memory
 * (RING x CHUNK, 2 MiB per upload) without making it faster. */
#define CHUNK ((apr_size_t)256 * 1024)
#define FIRST_CHUNK ((apr_size_t)16 * 1024) /* chunk[0] until the file outgrows it */
#define RING 8
#define BATCH 4
#define ALIGN ((apr_size_t)4096) /* O_DIRECT buffers, lengths and offsets */

/* Early writeback (Linux; files written through the page cache): the
 * kernel starts writing dirty pages back only at
 * dirty_background_ratio, so without a push the final fsync would write the
 * whole file. Every WRITEBACK_STEP bytes the new range is handed to writeback
 * and the range two steps back is waited for: the disk always has a step or
 * two queued, the final fsync finds little left to write, and the file's
 * dirty pages stay at about three steps. */
#if defined(__linux__) && defined(SYNC_FILE_RANGE_WRITE)
#define US_EARLY_WRITEBACK 1
#endif
#define WRITEBACK_STEP (8LL * 1024 * 1024)

#define MACHINE_LEN 12 /* hex digits of us_blob_machine() */

struct us_blob {
    apr_pool_t *pool;
    const char *dir;
    const char *path;
    const char *tmp_path;   /* the temp file's name (large files) */
    const char *created;    /* the file we created and own: tmp_path, or path
                             * for a small file; NULL once published or removed */
    apr_file_t *f;          /* unbuffered: the chunks are the buffer */
    us_dirsync_ticket dirsync; /* held while created == path (a small file):
                                * taken at its create */
    long long size;         /* bytes taken by us_blob_write */
    apr_status_t failed;    /* the first write error the request thread saw */
    char hex[65];

    /* chunks: chunk[0] from the pool (FIRST_CHUNK bytes from the request's
     * until the file needs more), the rest malloc'ed with the thread */
    apr_size_t chunk0_cap;
    char *chunk[RING];
    apr_size_t fill[RING];  /* bytes in each chunk handed over */
    unsigned long produced; /* chunks handed over (guarded by mu once threaded) */
    unsigned long consumed; /* chunks written (likewise) */
    unsigned long hashed;   /* chunks hashed by the hasher thread (likewise) */
    apr_size_t cur_fill;    /* bytes in chunk[produced % RING], being filled */

    EVP_MD_CTX *sha;        /* the hasher thread's while it runs, else the request thread's */

    /* the writing side: the request thread's until the writer thread starts,
     * the writer's until it is joined */
    int fd;                 /* f's descriptor, for sync_file_range */
    int early_writeback;    /* 0 if the file system refused it */
    int direct;             /* O_DIRECT is set on fd */
    long long written;      /* bytes written to fd */
    long long submitted;    /* [0, submitted) handed to writeback */
    long long submitted_before; /* submitted, one step earlier */
    long long waited;       /* [0, waited) written back */

    /* the writer thread; it never touches the request's pool (not
     * thread-safe): the thread, mu and cv live in tpool, an unmanaged pool
     * with an allocator of its own, destroyed by blob_cleanup once the
     * thread is joined (a sub-pool of the request's would go before the
     * cleanup that joins it) */
    int threaded;           /* started and not yet joined */
    apr_pool_t *tpool;      /* NULL until mu and cv exist */
    apr_thread_t *thread;
    apr_thread_t *hasher;   /* NULL: the request thread hashes */
    apr_thread_mutex_t *mu;
    apr_thread_cond_t *cv;  /* any change of produced, consumed, hashed, closing */
    int closing;            /* no more chunks will come */
    int abandon;            /* stop at once, the content is not wanted */
    apr_status_t err;       /* the writer's first error */
};

/* Joins the writer thread; abandon: without writing what is still queued. */
static void stop_writer(us_blob *b, int abandon)
{
    if (!b->threaded)
        return;
    apr_status_t rv;
    apr_thread_mutex_lock(b->mu);
    b->closing = 1;
    if (abandon)
        b->abandon = 1;
    apr_thread_cond_broadcast(b->cv);
    apr_thread_mutex_unlock(b->mu);
    apr_thread_join(&rv, b->thread);
    if (b->hasher)
        apr_thread_join(&rv, b->hasher);
    b->hasher = NULL;
    b->threaded = 0;
}

/* Before the pool's subpools go (chunk[0] of a large file lives in one):
 * the threads read the chunks until they are joined. */
static apr_status_t blob_stop_threads(void *data)
{
    stop_writer(data, 1);
    return APR_SUCCESS;
}

static apr_status_t blob_cleanup(void *data)
{
    us_blob *b = data;
    stop_writer(b, 1); /* first: it uses the file and the chunks */
    if (b->tpool) {
        apr_pool_destroy(b->tpool); /* mu and cv with it */
        b->tpool = NULL;
    }
    for (int i = 1; i < RING; i++) {
        free(b->chunk[i]);
        b->chunk[i] = NULL;
    }
    if (b->f) {
        apr_file_close(b->f);
        b->f = NULL;
    }
    if (b->created) {
        if (b->created == b->path)
            us_dirsync_cancel(&b->dirsync);
        unlink(b->created);
        b->created = NULL;
    }
    if (b->sha) {
        EVP_MD_CTX_free(b->sha);
        b->sha = NULL;
    }
    return APR_SUCCESS;
}

/* size bytes from p, aligned for O_DIRECT (see write_chunks) */
static char *aligned_alloc_in(apr_pool_t *p, apr_size_t size)
{
    return (char *)(((apr_uintptr_t)apr_palloc(p, size + ALIGN) + ALIGN - 1) &
                    ~(apr_uintptr_t)(ALIGN - 1));
}

apr_status_t us_blob_open(apr_pool_t *p, const char *dir, const char *name, us_blob **out)
{
    us_blob *b = apr_pcalloc(p, sizeof(*b));
    apr_status_t rv = apr_dir_make_recursive(dir, APR_FPROT_UREAD | APR_FPROT_UWRITE |
                                             APR_FPROT_UEXECUTE | APR_FPROT_GREAD |
                                             APR_FPROT_GEXECUTE, p);
    if (rv != APR_SUCCESS && !APR_STATUS_IS_EEXIST(rv))
        return rv;
    b->pool = p;
    b->dir = dir;
    b->path = apr_pstrcat(p, dir, "/", name, NULL);
    /* the writer's pid and machine in the name: a sweep can tell live temp
     * files from those a dead process left (a graceful restart sweeps while
     * the old children are still writing theirs) */
    b->tmp_path = apr_psprintf(p, "%s/.%s.%ld-%s.tmp", dir, name, (long)getpid(),
                               us_blob_machine());
    b->fd = -1;
    apr_pool_cleanup_register(p, b, blob_cleanup, apr_pool_cleanup_null);
    apr_pool_pre_cleanup_register(p, b, blob_stop_threads);
    b->chunk[0] = aligned_alloc_in(p, FIRST_CHUNK);
    b->chunk0_cap = FIRST_CHUNK;
    b->sha = EVP_MD_CTX_new();
    EVP_DigestInit_ex(b->sha, EVP_sha256(), NULL);
    *out = b;
    return APR_SUCCESS;
}

/* Creates the file the content goes to: the temp file, or for a small file
 * at finish the destination itself. Never an existing file (EXCL). */
static apr_status_t create_file(us_blob *b, const char *path)
{
    apr_status_t rv = apr_file_open(&b->f, path, APR_FOPEN_WRITE | APR_FOPEN_CREATE |
                                    APR_FOPEN_EXCL | APR_FOPEN_BINARY,
                                    APR_FPROT_UREAD | APR_FPROT_UWRITE | APR_FPROT_GREAD, b->pool);
    if (rv != APR_SUCCESS)
        return rv;
    b->created = path;
    apr_os_file_t fd;
    b->early_writeback = apr_os_file_get(&fd, b->f) == APR_SUCCESS;
    b->fd = fd;
    return APR_SUCCESS;
}

/* Hands [submitted, written) to writeback and waits for the range of the
 * step before. An I/O error (EIO, ENOSPC) is the write's error: once
 * reported here, the final fsync would not report it again. */
static apr_status_t early_writeback(us_blob *b)
{
#ifdef US_EARLY_WRITEBACK
    long long wait_to = b->submitted_before;
    if (sync_file_range(b->fd, b->submitted, b->written - b->submitted,
                        SYNC_FILE_RANGE_WRITE) == 0 &&
        (wait_to == b->waited ||
         sync_file_range(b->fd, b->waited, wait_to - b->waited,
                         SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
                         SYNC_FILE_RANGE_WAIT_AFTER) == 0)) {
        b->waited = wait_to;
        b->submitted_before = b->submitted;
        b->submitted = b->written;
        return APR_SUCCESS;
    }
    if (errno == EINVAL || errno == ESPIPE || errno == ENOSYS) {
        b->early_writeback = 0; /* not on this file system: the final fsync does it all */
        return APR_SUCCESS;
    }
    return APR_FROM_OS_ERROR(errno);
#else
    b->early_writeback = 0;
    return APR_SUCCESS;
#endif
}

/* O_DIRECT on or off for fd; b->direct says which it is now. */
static void set_direct(us_blob *b, int on)
{
    int fl = fcntl(b->fd, F_GETFL);
    if (fl != -1 && fcntl(b->fd, F_SETFL, on ? fl | O_DIRECT : fl & ~O_DIRECT) == 0)
        b->direct = on;
}

/* The writing side: chunks first..first+n-1 of the ring, in one writev. */
static apr_status_t write_chunks(us_blob *b, unsigned long first, unsigned long n)
{
    struct iovec iov[RING];
    apr_size_t total = 0;
    int cnt = (int)n;
    for (int i = 0; i < cnt; i++) {
        unsigned long k = (first + (unsigned long)i) % RING;
        iov[i].iov_base = b->chunk[k];
        iov[i].iov_len = b->fill[k];
        total += b->fill[k];
    }
    if (b->direct && total % ALIGN)
        set_direct(b, 0); /* the last chunk: a length O_DIRECT cannot write */
    struct iovec *v = iov;
    while (cnt > 0) {
        ssize_t w = writev(b->fd, v, cnt);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EINVAL && b->direct) { /* the device wants a larger alignment */
                set_direct(b, 0);
                if (!b->direct)
                    continue;
            }
            return APR_FROM_OS_ERROR(errno);
        }
        while (cnt > 0 && (size_t)w >= v->iov_len) {
            w -= (ssize_t)v->iov_len;
            v++;
            cnt--;
        }
        if (cnt > 0) {
            v->iov_base = (char *)v->iov_base + w;
            v->iov_len -= (size_t)w;
        }
    }
    b->written += (long long)total;
    if (b->early_writeback && b->written - b->submitted >= WRITEBACK_STEP)
        return early_writeback(b);
    return APR_SUCCESS;
}

static void *APR_THREAD_FUNC writer_main(apr_thread_t *thd, void *data)
{
    us_blob *b = data;
    apr_thread_mutex_lock(b->mu);
    for (;;) {
        while (b->consumed == b->produced && !b->closing)
            apr_thread_cond_wait(b->cv, b->mu);
        if (b->abandon || b->consumed == b->produced)
            break; /* abandoned, or closing and all written */
        unsigned long first = b->consumed, n = b->produced - b->consumed;
        if (n > BATCH)
            n = BATCH; /* the reader fills the others meanwhile */
        int skip = b->err != APR_SUCCESS; /* after an error: only free the chunks */
        apr_thread_mutex_unlock(b->mu);
        apr_status_t rv = skip ? APR_SUCCESS : write_chunks(b, first, n);
        apr_thread_mutex_lock(b->mu);
        if (rv != APR_SUCCESS && b->err == APR_SUCCESS)
            b->err = rv;
        b->consumed += n;
        apr_thread_cond_broadcast(b->cv);
    }
    apr_thread_mutex_unlock(b->mu);
    (void)thd;
    return NULL; /* not apr_thread_exit: its pthread_exit unwinds without the
                  * sanitizer unpoisoning this frame's stack */
}

/* Hashes every chunk handed over, in order, beside the writer. */
static void *APR_THREAD_FUNC hasher_main(apr_thread_t *thd, void *data)
{
    us_blob *b = data;
    apr_thread_mutex_lock(b->mu);
    for (;;) {
        while (b->hashed == b->produced && !b->closing)
            apr_thread_cond_wait(b->cv, b->mu);
        if (b->abandon || b->hashed == b->produced)
            break;
        unsigned long k = b->hashed % RING;
        apr_thread_mutex_unlock(b->mu);
        EVP_DigestUpdate(b->sha, b->chunk[k], b->fill[k]);
        apr_thread_mutex_lock(b->mu);
        b->hashed++;
        apr_thread_cond_broadcast(b->cv);
    }
    apr_thread_mutex_unlock(b->mu);
    (void)thd;
    return NULL;
}

/* Starts the writer thread, and the hasher if it can (else the request
 * thread hashes); 0 (and the caller writes inline) if it cannot. */
static int start_writer(us_blob *b)
{
    for (int i = 1; i < RING; i++)
        if (!b->chunk[i] && posix_memalign((void **)&b->chunk[i], ALIGN, CHUNK) != 0) {
            b->chunk[i] = NULL;
            return 0;
        }
    if (!b->tpool) {
        apr_pool_t *tp;
        if (apr_pool_create_unmanaged_ex(&tp, NULL, NULL) != APR_SUCCESS)
            return 0;
        if (apr_thread_mutex_create(&b->mu, APR_THREAD_MUTEX_DEFAULT, tp) != APR_SUCCESS ||
            apr_thread_cond_create(&b->cv, tp) != APR_SUCCESS) {
            apr_pool_destroy(tp);
            return 0;
        }
        b->tpool = tp;
    }
    /* the thread takes no signal: httpd's threads leave those to the process */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    apr_status_t rv = apr_thread_create(&b->thread, NULL, writer_main, b, b->tpool);
    if (rv == APR_SUCCESS && apr_thread_create(&b->hasher, NULL, hasher_main, b, b->tpool) != APR_SUCCESS)
        b->hasher = NULL;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rv != APR_SUCCESS)
        return 0;
    b->threaded = 1;
    return 1;
}

/* Hashes the chunk being filled and hands it to the writing side, then
 * waits until the next one is free. Returns the first write error so far. */
static apr_status_t hand_over(us_blob *b)
{
    apr_status_t rv;
    unsigned long k = b->produced % RING;
    b->fill[k] = b->cur_fill;
    b->cur_fill = 0;
    if (!b->hasher) /* while it is in the cache */
        EVP_DigestUpdate(b->sha, b->chunk[k], b->fill[k]);
    if (!b->threaded)
        return write_chunks(b, b->produced, 1); /* produced stays 0: chunk[0] again */
    apr_thread_mutex_lock(b->mu);
    b->produced++;
    apr_thread_cond_broadcast(b->cv);
    /* the next chunk is free once both the writer and the hasher are past it */
    while ((b->produced - b->consumed == RING ||
            (b->hasher && b->produced - b->hashed == RING)) && b->err == APR_SUCCESS)
        apr_thread_cond_wait(b->cv, b->mu);
    rv = b->err;
    apr_thread_mutex_unlock(b->mu);
    return rv;
}

/* chunk[0] at its full size, for a file larger than FIRST_CHUNK. From a
 * pool of its own: 256 KiB taken from the request pool would stay with the
 * connection (httpd keeps a request pool's memory for the next request). */
static void grow_first_chunk(us_blob *b)
{
    char *full = aligned_alloc_in(us_pool_unshared(b->pool), CHUNK);
    memcpy(full, b->chunk[0], b->cur_fill);
    b->chunk[0] = full;
    b->chunk0_cap = CHUNK;
}

apr_status_t us_blob_write(us_blob *b, const char *data, apr_size_t len)
{
    if (b->failed)
        return b->failed;
    b->size += (long long)len;
    if (b->chunk0_cap < CHUNK && b->cur_fill + len > b->chunk0_cap)
        grow_first_chunk(b); /* still in chunk[0]: nothing was handed over */
    while (len) {
        apr_size_t n = CHUNK - b->cur_fill < len ? CHUNK - b->cur_fill : len;
        memcpy(b->chunk[b->produced % RING] + b->cur_fill, data, n);
        b->cur_fill += n;
        data += n;
        len -= n;
        if (b->cur_fill == CHUNK) {
            apr_status_t rv;
            if (!b->f) { /* the first full chunk: a large file, via a temp file */
                if ((rv = create_file(b, b->tmp_path)) != APR_SUCCESS)
                    return b->failed = rv;
                set_direct(b, 1);
                if (b->direct)
                    b->early_writeback = 0; /* nothing of it in the page cache */
                start_writer(b);
            }
            rv = hand_over(b);
            if (rv != APR_SUCCESS)
                return b->failed = rv;
        }
    }
    return APR_SUCCESS;
}

apr_status_t us_blob_finish(us_blob *b)
{
    unsigned char d[32];
    apr_status_t rv = b->failed;
    if (rv == APR_SUCCESS && !b->f) { /* a small file: straight to its name */
        rv = create_file(b, b->path);
        if (rv == APR_SUCCESS)
            /* its directory entry exists from here on: a directory fsync
             * anyone starts while we write and sync the file covers it */
            us_dirsync_begin(b->dir, &b->dirsync);
    }
    if (rv == APR_SUCCESS && b->cur_fill)
        rv = hand_over(b);
    if (b->threaded) {
        stop_writer(b, rv != APR_SUCCESS);
        if (rv == APR_SUCCESS)
            rv = b->err; /* joined: no lock needed */
    }
    if (b->f) {
        if (rv == APR_SUCCESS)
            rv = apr_file_sync(b->f);
        apr_status_t crv = apr_file_close(b->f);
        b->f = NULL;
        if (rv == APR_SUCCESS)
            rv = crv;
    }
    EVP_DigestFinal_ex(b->sha, d, NULL);
    for (int i = 0; i < 32; i++)
        snprintf(b->hex + 2 * i, 3, "%02x", d[i]);
    return rv;
}

apr_status_t us_blob_publish(us_blob *b)
{
    if (!b->created)
        return APR_EGENERAL; /* not finished, or already published */
    if (b->created == b->path) { /* a small file, created under its name */
        b->created = NULL; /* published: the cleanup must leave it */
        return us_dirsync_end(&b->dirsync);
    }
    apr_status_t rv = apr_file_rename(b->tmp_path, b->path, b->pool);
    if (rv != APR_SUCCESS)
        return rv;
    b->created = NULL;
    return us_dirsync(b->dir); /* shared with concurrent uploads into dir */
}

void us_blob_discard(us_blob *b)
{
    blob_cleanup(b);
}

long long us_blob_size(const us_blob *b) { return b->size; }
const char *us_blob_sha256_hex(const us_blob *b) { return b->hex; }
const char *us_blob_path(const us_blob *b) { return b->path; }
const char *us_blob_pending_path(const us_blob *b) { return b->created; }

/* ".<name>.<pid>-<machine>.tmp" (or ".<name>.<pid>.tmp", older): a temp file of ours */
static int is_temp_name(const char *fname)
{
    size_t n = strlen(fname);
    return fname[0] == '.' && n > 4 && strcmp(fname + n - 4, ".tmp") == 0;
}

static char machine[MACHINE_LEN + 1];
static pthread_once_t machine_once = PTHREAD_ONCE_INIT;

static uint64_t fnv1a(uint64_t h, const char *s)
{
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

/* The host name and the boot id: a pid is known only to the kernel (boot)
 * and pid namespace (container, usually its own host name) it came from. */
static void make_machine(void)
{
    char host[256] = "", boot[64] = "";
    FILE *f = fopen("/proc/sys/kernel/random/boot_id", "r");
    if (f) {
        if (!fgets(boot, sizeof(boot), f))
            boot[0] = '\0';
        fclose(f);
    }
    if (gethostname(host, sizeof(host) - 1) != 0)
        host[0] = '\0';
    uint64_t h = fnv1a(fnv1a(fnv1a(14695981039346656037ULL, host), "\n"), boot);
    snprintf(machine, sizeof(machine), "%012llx",
             (unsigned long long)(h & 0xffffffffffffULL));
}

const char *us_blob_machine(void)
{
    pthread_once(&machine_once, make_machine);
    return machine;
}

/* Another machine's temp file: gone once it has not changed for
 * US_BLOB_FOREIGN_STALL (its pid means nothing here). */
static int foreign_writer_gone(apr_pool_t *p, const char *dir, const char *fname)
{
    apr_finfo_t fi;
    apr_status_t rv = apr_stat(&fi, apr_pstrcat(p, dir, "/", fname, NULL), APR_FINFO_MTIME, p);
    if (rv != APR_SUCCESS)
        return APR_STATUS_IS_ENOENT(rv);
    return apr_time_now() - fi.mtime > US_BLOB_FOREIGN_STALL;
}

/* The writer of the temp file dir/fname is gone (or unknown): judged by its
 * pid if this machine wrote it (or the name has no machine), else by age. */
static int writer_gone(apr_pool_t *p, const char *dir, const char *fname)
{
    size_t n = strlen(fname);
    const char *end = fname + n - 4, *dot = end;
    while (dot > fname && dot[-1] != '.')
        dot--;
    char *stop = NULL;
    long pid = strtol(dot, &stop, 10);
    if (dot == fname || stop == dot || pid <= 0)
        return 1;
    if (stop != end) {
        if (*stop != '-' || end - (stop + 1) != MACHINE_LEN)
            return 1;
        if (strncmp(stop + 1, us_blob_machine(), MACHINE_LEN) != 0)
            return foreign_writer_gone(p, dir, fname);
    }
    return kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

/* Removes one entry; a failure other than "gone already" is logged. */
static int remove_entry(const us_logger *lg, int msgno, const char *what, const char *path)
{
    if (unlink(path) == 0)
        return 1;
    if (errno != ENOENT)
        us_log(lg, US_LOG_WARN, APR_FROM_OS_ERROR(errno), msgno, "%s: cannot remove %s", what, path);
    return 0;
}

int us_blob_clear_dir(apr_pool_t *p, const char *dir, int keep_live, const us_logger *lg)
{
    apr_dir_t *d;
    apr_finfo_t fi;
    apr_pool_t *entry; /* one entry's path at a time: memory does not grow with the files */
    int kept = 0;
    if (apr_dir_open(&d, dir, p) != APR_SUCCESS)
        return 0; /* gone already */
    apr_pool_create(&entry, p);
    while (us_dir_next(d, &fi, APR_FINFO_NAME | APR_FINFO_TYPE)) {
        /* an entry of no known type went meanwhile: if not, rmdir tells */
        if (!(fi.valid & APR_FINFO_TYPE) || strcmp(fi.name, ".") == 0 || strcmp(fi.name, "..") == 0)
            continue;
        apr_pool_clear(entry);
        if (fi.filetype != APR_REG ||
            (keep_live && is_temp_name(fi.name) && !writer_gone(entry, dir, fi.name)) ||
            !remove_entry(lg, 1203, "clearing a done session",
                          apr_pstrcat(entry, dir, "/", fi.name, NULL)))
            kept++;
    }
    apr_pool_destroy(entry);
    apr_dir_close(d);
    if (kept == 0 && rmdir(dir) != 0 && errno != ENOENT)
        kept = 1; /* a file arrived meanwhile */
    return kept;
}

int us_blob_sweep(apr_pool_t *p, const char *dir, const us_logger *lg)
{
    apr_dir_t *d;
    apr_finfo_t fi;
    int removed = 0;
    apr_status_t rv = apr_dir_open(&d, dir, p);
    if (rv != APR_SUCCESS) {
        if (!APR_STATUS_IS_ENOENT(rv))
            us_log(lg, US_LOG_WARN, rv, 1202, "startup sweep: cannot read %s", dir);
        return 0;
    }
    while (us_dir_next(d, &fi, APR_FINFO_NAME | APR_FINFO_TYPE)) {
        if ((fi.valid & APR_FINFO_TYPE) && fi.filetype == APR_REG && is_temp_name(fi.name) &&
            writer_gone(p, dir, fi.name) &&
            remove_entry(lg, 1202, "startup sweep", apr_pstrcat(p, dir, "/", fi.name, NULL)))
            removed++;
    }
    apr_dir_close(d);
    return removed;
}
