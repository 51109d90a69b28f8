/*
 * us_writer.c - one writer at a time per database, with group commit.
 * Durability: the WAL is synced after the commit, outside the lock (see
 * sync_covering); a caller hears US_DB_OK only once a sync that began
 * after its commit has ended well.
 *
 * Why: SQLite serialises writers on its single write lock anyway, so a
 * transaction per write would pay a WAL sync each for no concurrency; and
 * processes that meet in SQLite's busy handler sleep 1, 2, 5 ... 100 ms
 * instead of waking when the lock frees (while apr_dbd's process-wide
 * driver mutex stops every other statement of that process). So writers
 * of a process queue, each waiting on a semaphore of its own; the first
 * becomes the leader, takes the kernel's flock shared with the other
 * processes and commits the whole queue at once. The others return when
 * their piece is on disk.
 */
#include "us_store_db.h"
#include "us_lasting_pool.h"

#include <apr_atomic.h>
#include <apr_strings.h>
#include <apr_thread_mutex.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/types.h>
#include <unistd.h>

typedef struct us_writer {
    char *key;                     /* the database's params */
    int lock_fd;                   /* flock target; -1: none (unopenable) */
    apr_pool_t *pool;              /* the writer's, freed with it */
    apr_allocator_t *allocator;    /* pool's, kept reachable (us_lasting_pool.h) */
    apr_thread_mutex_t *mu;        /* guards the queue and `leading` */
    us_write_job *head, **tail;
    int leading;                   /* a leader is running a batch */
    apr_uint64_t committed;        /* batches committed so far, in commit order */
    int syncing;                   /* a WAL sync is running */
    struct us_sync_wait *sync_waiters; /* committed meanwhile: for the next sync */
    int refs;                      /* connections of this process using it */
    pid_t pid;                     /* the process that made it */
    volatile apr_uint32_t wants_conn; /* warmed (us_sqlite_warm): batches want conn */
    apr_pool_t *conn_pool;         /* conn's parent, NULL while there is none */
    us_sqlite_db *conn;            /* the leaders' own connection (leader_conn) */
    apr_time_t conn_retry;         /* no new try to open it before then */
    struct us_writer *next;
} us_writer;

/* A leader whose batch committed while another sync ran: the next sync
 * that starts covers it. On the leader's stack until it is woken. */
typedef struct us_sync_wait {
    apr_uint64_t seq;              /* its batch's place in w->committed */
    int lead;                      /* woken to run the next sync itself */
    int err;                       /* else: 0 on disk, or the sync's errno */
    sem_t wake;
    struct us_sync_wait *next;
} us_sync_wait;

/* The writers of this process, one per database, each as long as a
 * connection of the process to that database is open: the parent's lives
 * for one run of its sweep, so restarts leave no lock file open behind
 * them. A forked child must not share its parent's flock (flock belongs
 * to the open file, and a child holding the parent's would keep a lock the
 * parent died with), so it closes the inherited lock files and starts
 * afresh. The registry's lock is a static POSIX mutex:
 * APR's have no static initialiser. */
static pthread_mutex_t registry_mu = PTHREAD_MUTEX_INITIALIZER;
static us_writer *registry;
static pid_t registry_pid;

static void writer_free(us_writer *w)
{
    if (w->lock_fd >= 0)
        close(w->lock_fd);
    if (w->pool)
        apr_pool_destroy(w->pool);
    free(w->key);
    free(w);
}


static us_writer *writer_new(const us_sqlite_db *db)
{
    us_writer *w = calloc(1, sizeof(*w));
    if (!w)
        return NULL;
    w->lock_fd = -1;
    w->pid = getpid();
    /* unmanaged: no pool of a caller outlives the writer */
    if (!(w->key = strdup(db->params)) ||
        us_lasting_pool_create(&w->pool, &w->allocator) != APR_SUCCESS ||
        apr_thread_mutex_create(&w->mu, APR_THREAD_MUTEX_DEFAULT, w->pool) != APR_SUCCESS) {
        writer_free(w);
        return NULL;
    }
    size_t n = strlen(db->params) + sizeof(US_SQLITE_LOCK_SUFFIX);
    char *path = malloc(n); /* no pool here: the writer outlives them */
    if (path) {
        /* O_RDONLY suffices for flock, so a lock file created by root
         * (the parent's expiry sweep) stays usable by User */
        snprintf(path, n, "%s" US_SQLITE_LOCK_SUFFIX, db->params);
        w->lock_fd = open(path, O_RDONLY | O_CREAT | O_CLOEXEC, 0644);
        if (w->lock_fd < 0)
            us_log(db->log, US_LOG_WARN, APR_FROM_OS_ERROR(errno), US_LOGNO_LOCK_FILE,
                   "cannot open %s: the processes' writers meet in SQLite's busy handler",
                   path);
        free(path);
    }
    w->tail = &w->head;
    return w;
}

/* A pool cleanup of each connection that took the writer: the last one
 * of the process to close frees it. */
static apr_status_t writer_release(void *data)
{
    us_writer *w = data;
    int last = 0;
    pthread_mutex_lock(&registry_mu);
    if (w->pid == getpid() && --w->refs == 0) {
        us_writer **pp = &registry;
        while (*pp && *pp != w)
            pp = &(*pp)->next;
        if (*pp)
            *pp = w->next;
        last = 1;
    }
    pthread_mutex_unlock(&registry_mu);
    if (last)
        writer_free(w);
    return APR_SUCCESS;
}

static us_writer *writer_of(us_sqlite_db *db)
{
    /* a connection serves the process that opened it (no getpid() here:
     * a system call per write) */
    if (db->writer)
        return db->writer;
    pthread_mutex_lock(&registry_mu);
    if (registry_pid != getpid()) {
        /* inherited from the parent: not ours to use, nor its lock files */
        for (us_writer *x = registry; x; x = x->next)
            if (x->lock_fd >= 0) {
                close(x->lock_fd);
                x->lock_fd = -1;
            }
        registry = NULL;
        registry_pid = getpid();
    }
    us_writer *w = registry;
    while (w && strcmp(w->key, db->params) != 0)
        w = w->next;
    if (!w && (w = writer_new(db)) != NULL) {
        w->next = registry;
        registry = w;
    }
    if (w)
        w->refs++;
    pthread_mutex_unlock(&registry_mu);
    if (w)
        apr_pool_cleanup_register(db->pool, w, writer_release, apr_pool_cleanup_null);
    db->writer = w;
    return w;
}

static void lock_file(int fd, int op)
{
    if (fd >= 0)
        while (flock(fd, op) != 0 && errno == EINTR)
            ;
}

static void set_error(us_write_job *j, us_db_rc rc, const char *err)
{
    j->rc = rc;
    j->err = err ? apr_pstrdup(j->pool, err) : NULL;
}

/* Rolls back, keeping db->err (the error that made us roll back). */
static void rollback(us_sqlite_db *db)
{
    const char *err = db->err;
    if (us_db_txn(db, US_TXN_ROLLBACK) != US_DB_OK)
        us_log(db->log, US_LOG_ERR, 0, US_LOGNO_ROLLBACK, "rollback failed: %s", db->err);
    db->err = err;
}

static int store_error(us_db_rc rc)
{
    return rc == US_DB_ERROR || rc == US_DB_BUSY;
}

/* Runs jobs in one transaction and reports to each. Returns 0 instead,
 * with everything rolled back and nothing reported, when a piece of a
 * shared batch failed with a store error: such a piece may have done part
 * of its work, and SQLite may even have ended the transaction. */
static int run_together(us_sqlite_db *db, us_write_job *jobs)
{
    int alone = !jobs->next, changed = 0;
    us_db_rc rc = us_db_txn(db, US_TXN_BEGIN);

    if (rc != US_DB_OK) {
        for (us_write_job *j = jobs; j; j = j->next)
            set_error(j, rc, db->err);
        return 1;
    }
    for (us_write_job *j = jobs; j; j = j->next) {
        j->rc = j->fn(db, j->pool, j->arg);
        j->err = NULL;
        if (store_error(j->rc)) {
            const char *err = db->err;
            rollback(db);
            if (!alone)
                return 0;
            set_error(j, j->rc, err);
            return 1;
        }
        changed |= j->rc == US_DB_OK;
    }
    /* logical answers (NOTFOUND, CONFLICT, LIMIT) changed nothing */
    if (!changed) {
        rollback(db);
        return 1;
    }
    if ((rc = us_db_txn(db, US_TXN_COMMIT)) != US_DB_OK) {
        const char *err = db->err;
        us_log(db->log, rc == US_DB_BUSY ? US_LOG_DEBUG : US_LOG_ERR, 0, US_LOGNO_COMMIT,
               "commit failed: %s", err);
        rollback(db);
        for (us_write_job *j = jobs; j; j = j->next)
            if (j->rc == US_DB_OK)
                set_error(j, rc, err);
    }
    return 1;
}

void us_write_batch(us_sqlite_db *db, us_write_job *jobs)
{
    if (!jobs || run_together(db, jobs))
        return;
    /* one piece failed: give every piece a transaction of its own, so
     * that only the failing one fails */
    us_log(db->log, US_LOG_DEBUG, 0, US_LOGNO_SPLIT,
           "a piece of a shared write failed (%s): each runs alone", db->err);
    for (us_write_job *j = jobs; j;) {
        us_write_job *next = j->next;
        j->next = NULL;
        run_together(db, j);
        j->next = next;
        j = next;
    }
}

/* fdatasync of the WAL (SQLite, WAL mode, synchronous=NORMAL): whatever
 * was committed before it began is on disk when it returns 0, else the
 * errno. The descriptor stays with the connection: SQLite keeps the WAL's
 * inode while a connection is open (only the last connection, holding the
 * database's exclusive lock, deletes the file; a restart or truncation
 * rewrites it in place). After a failed sync it is opened afresh. */
static int wal_sync(us_sqlite_db *db)
{
    if (db->wal_fd < 0)
        db->wal_fd = open(db->wal_path, O_RDONLY | O_CLOEXEC);
    int rc = db->wal_fd < 0 ? -1
           : db->wal_fdatasync ? db->wal_fdatasync(db->wal_fd) : fdatasync(db->wal_fd);
    int e = errno;
    if (rc == 0)
        return 0;
    if (db->wal_fd >= 0) {
        close(db->wal_fd);
        db->wal_fd = -1;
    }
    us_log(db->log, US_LOG_ERR, APR_FROM_OS_ERROR(e), US_LOGNO_SYNC,
           "committed, but syncing %s failed: the writes may not survive a crash",
           db->wal_path);
    return e ? e : EIO;
}

static int batch_committed(const us_sqlite_db *db, const us_write_job *jobs)
{
    int committed = 0;
    for (const us_write_job *j = jobs; j; j = j->next)
        committed |= j->rc == US_DB_OK;
    return committed && db->wal_path;
}

/* The jobs that committed hear that their commit may not be on disk. */
static void not_durable(const us_sqlite_db *db, us_write_job *jobs, int e)
{
    for (us_write_job *j = jobs; j; j = j->next)
        if (j->rc == US_DB_OK) {
            j->rc = US_DB_NOT_DURABLE;
            j->err = apr_psprintf(j->pool, "committed, but syncing %s failed: %s",
                                  db->wal_path, strerror(e));
        }
}

/* Runs one sync for every batch committed so far, then answers the
 * leaders that waited for it and hands the next sync to one that
 * committed after it began. Called with w->syncing set. */
static int run_sync(us_writer *w, us_sqlite_db *db)
{
    apr_thread_mutex_lock(w->mu);
    apr_uint64_t upto = w->committed;
    apr_thread_mutex_unlock(w->mu);

    int e = wal_sync(db);

    apr_thread_mutex_lock(w->mu);
    us_sync_wait *covered = NULL, **pp = &w->sync_waiters;
    while (*pp) {
        us_sync_wait *x = *pp;
        if (x->seq <= upto) {
            *pp = x->next;
            x->next = covered;
            covered = x;
        }
        else
            pp = &x->next;
    }
    us_sync_wait *lead = w->sync_waiters;
    if (lead) {
        w->sync_waiters = lead->next;
        lead->lead = 1;
    }
    else
        w->syncing = 0;
    apr_thread_mutex_unlock(w->mu);

    /* each waiter is gone once posted: read nothing of it after */
    for (us_sync_wait *x = covered, *after; x; x = after) {
        after = x->next;
        x->err = e;
        sem_post(&x->wake);
    }
    if (lead)
        sem_post(&lead->wake);
    return e;
}

/* Queues x for the next sync; x stays until run_sync posts it. */
static void wait_for_sync(us_writer *w, us_sync_wait *x)
{
    x->next = w->sync_waiters;
    w->sync_waiters = x;
}

/* Makes the batch committed as w->committed's seq-th durable: 0, or the
 * errno of the sync that covered it. One sync at a time per process, run
 * outside the writers' lock, so the next batch commits meanwhile; the
 * batches that commit while a sync runs share the next one. */
static int sync_covering(us_writer *w, us_sqlite_db *db, apr_uint64_t seq)
{
    us_sync_wait me = { .seq = seq };

    apr_thread_mutex_lock(w->mu);
    if (!w->syncing) {
        w->syncing = 1;
        apr_thread_mutex_unlock(w->mu);
        return run_sync(w, db);
    }
    if (sem_init(&me.wake, 0, 0) != 0) {
        apr_thread_mutex_unlock(w->mu);
        return wal_sync(db); /* a sync of its own beside the running one */
    }
    wait_for_sync(w, &me);
    apr_thread_mutex_unlock(w->mu);
    while (sem_wait(&me.wake) != 0 && errno == EINTR)
        ;
    sem_destroy(&me.wake);
    return me.lead ? run_sync(w, db) : me.err;
}

/* Without a queue: PostgreSQL (its own row locks) or an out-of-memory writer. */
static us_db_rc write_alone(us_sqlite_db *db, apr_pool_t *p, us_write_fn fn, void *arg)
{
    us_write_job job = { .fn = fn, .arg = arg, .pool = p };
    us_write_batch(db, &job);
    int e = batch_committed(db, &job) ? wal_sync(db) : 0;
    if (e)
        not_durable(db, &job, e);
    if (job.err)
        us_sqlite_set_errf(db, "%s", job.err);
    return job.rc;
}

/* Wakes a waiter: the post is its one word to it (done or lead, set
 * before). The job lives on the waiter's stack, gone once it wakes: read
 * nothing of it after the post. A semaphore rather than a condition: the
 * woken waiter need not take w->mu again (glibc's condition wait re-locks
 * the mutex, a futex call more per waiter). */
static void wake(us_write_job *j)
{
    sem_post(&j->wake);
}

static void await(us_write_job *j)
{
    while (sem_wait(&j->wake) != 0 && errno == EINTR)
        ;
}

/* Ends a lead, under w->mu: the first of those who queued meanwhile
 * leads next (the caller wakes it once w->mu is released), or nobody. */
static us_write_job *lead_passed(us_writer *w)
{
    us_write_job *next = w->head;
    if (next)
        next->lead = 1;
    else
        w->leading = 0;
    return next;
}

/* The connection a leader runs its batch on: the writer's own, so that
 * its page cache lasts from one batch of the process to the next. SQLite
 * empties a connection's cache whenever another connection has committed
 * since its last transaction, and requests take whichever connection of
 * the pool is free, so a batch on the caller's connection re-read every
 * page it touched. Only a process that warmed its writer has one (a
 * child with several threads, us_store_warm: with one, its only pooled
 * connection runs everything, cache included; the parent's sweep writes
 * on its own connection, and no SQLite connection of the writer's is
 * open when the parent forks). It has a request connection's cache (a
 * larger one would keep what large requests wrote resident); an ingest
 * worker leads on its own connection, whose larger cache its batches
 * need. Opened again once worn out (see batch_ran); if it cannot be
 * opened, the batch runs on the caller's connection and the next try
 * comes a second later. Only the leader touches it. */
static us_sqlite_db *leader_conn(us_writer *w, us_sqlite_db *caller)
{
    if (caller->for_batches || !apr_atomic_read32(&w->wants_conn))
        return caller;
    if (w->conn && w->conn->worn_out) {
        apr_pool_destroy(w->conn_pool);
        w->conn_pool = NULL;
        w->conn = NULL;
    }
    if (w->conn || apr_time_now() < w->conn_retry)
        return w->conn ? w->conn : caller;

    us_sqlite_conf conf = { caller->drv, caller->params, caller->log };
    us_sqlite_db *c = NULL;
    const char *err = NULL;
    us_db_rc rc = apr_pool_create(&w->conn_pool, w->pool) == APR_SUCCESS
                ? us_sqlite_open(&conf, w->conn_pool, &c, &err) : US_DB_ERROR;
    if (rc != US_DB_OK) {
        us_log(caller->log, US_LOG_WARN, 0, US_LOGNO_WRITER_CONN,
               "cannot open the writers' connection to %s (%s): batches run on the "
               "caller's until it opens", caller->params, err ? err : "out of memory");
        if (w->conn_pool)
            apr_pool_destroy(w->conn_pool);
        w->conn_pool = NULL;
        w->conn_retry = apr_time_now() + apr_time_from_sec(1);
        return caller;
    }
    c->base.backend = caller->base.backend;
    c->writer = w; /* its own: no reference, it closes with the writer */
    w->conn = c;
    return c;
}

/* After a batch on the writers' own connection: one that a store error
 * met, or that a failed rollback left inside its transaction (holding
 * the database's write lock), is replaced before the next batch, as the
 * pool closes a request's connection that failed. */
static void batch_ran(us_writer *w, const us_sqlite_db *on, const us_write_job *batch)
{
    if (on != w->conn)
        return;
    int failed = !sqlite3_get_autocommit(apr_dbd_native_handle(on->drv, on->h));
    for (const us_write_job *j = batch; j && !failed; j = j->next)
        failed = j->rc == US_DB_ERROR;
    if (failed)
        w->conn->worn_out = 1;
}

us_db_rc us_write(us_sqlite_db *db, apr_pool_t *p, us_write_fn fn, void *arg)
{
    us_writer *w = writer_of(db);
    us_write_job job = { .fn = fn, .arg = arg, .pool = p };
    if (!w || sem_init(&job.wake, 0, 0) != 0)
        return write_alone(db, p, fn, arg);

    apr_thread_mutex_lock(w->mu);
    *w->tail = &job;
    w->tail = &job.next;
    int first = !w->leading;
    if (first)
        w->leading = job.lead = 1;
    apr_thread_mutex_unlock(w->mu);
    if (!first) /* job.lead and done are another thread's until the post */
        await(&job); /* until done, or handed the lead */
    if (!job.done) {
        /* lead: take the whole queue (ours first) and run it */
        apr_thread_mutex_lock(w->mu);
        us_write_job *batch = w->head;
        w->head = NULL;
        w->tail = &w->head;
        apr_thread_mutex_unlock(w->mu);

        us_sqlite_db *on = leader_conn(w, db);
        on->log = db->log; /* the caller's server logs its batch */
        lock_file(w->lock_fd, LOCK_EX);
        us_write_batch(on, batch);
        lock_file(w->lock_fd, LOCK_UN);
        batch_ran(w, on, batch);

        /* hand the lead to the first of those who queued meanwhile: their
         * batch commits while ours is being synced */
        apr_thread_mutex_lock(w->mu);
        apr_uint64_t seq = batch_committed(db, batch) ? ++w->committed : 0;
        us_write_job *next = lead_passed(w);
        apr_thread_mutex_unlock(w->mu);
        if (next)
            wake(next); /* it waits for this: still there */

        int e = seq ? sync_covering(w, db, seq) : 0;
        if (e)
            not_durable(db, batch, e);

        for (us_write_job *j = batch, *after; j; j = after) {
            after = j->next;
            j->done = 1;
            if (j != &job)
                wake(j);
        }
    }
    sem_destroy(&job.wake);
    if (job.err)
        us_sqlite_set_errf(db, "%s", job.err);
    return job.rc;
}

int us_write_sync_waiting(us_sqlite_db *db)
{
    us_writer *w = writer_of(db);
    int n = 0;
    if (!w)
        return 0;
    apr_thread_mutex_lock(w->mu);
    for (const us_sync_wait *x = w->sync_waiters; x; x = x->next)
        n++;
    apr_thread_mutex_unlock(w->mu);
    return n;
}

void us_sqlite_warm(us_db *base)
{
    us_sqlite_db *db = us_sqlite_of(base);
    us_writer *w = writer_of(db);
    if (!w)
        return;
    /* atomic: a leader reads it without w->mu */
    apr_atomic_set32(&w->wants_conn, 1);
    apr_thread_mutex_lock(w->mu);
    int lead = !w->leading;
    if (lead)
        w->leading = 1;
    apr_thread_mutex_unlock(w->mu);
    if (!lead) /* the batch running opens it, or the next */
        return;
    (void)leader_conn(w, db);
    apr_thread_mutex_lock(w->mu);
    us_write_job *next = lead_passed(w);
    apr_thread_mutex_unlock(w->mu);
    if (next)
        wake(next);
}

us_sqlite_db *us_write_leaders_conn(us_sqlite_db *db)
{
    us_writer *w = writer_of(db);
    if (!w)
        return NULL;
    apr_thread_mutex_lock(w->mu);
    us_sqlite_db *c = w->leading ? NULL : w->conn; /* a leader's to change */
    apr_thread_mutex_unlock(w->mu);
    return c;
}
