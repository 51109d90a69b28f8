/* us_keystore.c - the keys in force, re-read when the key file changes
 * (pure: APR threads, atomics and anonymous shared memory). */
#include "us_keystore.h"

#include <apr_atomic.h>
#include <apr_file_info.h>
#include <apr_shm.h>
#include <apr_strings.h>
#include <apr_thread_mutex.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

struct us_keys_gen {
    apr_pool_t *pool;       /* NULL for the initial keys (not ours) */
    const us_keyring *ring;
    volatile apr_uint32_t refs;
};

struct us_keystore {
    const char *path;
    apr_interval_time_t interval;
    const us_logger *log;
    apr_thread_mutex_t *mu;
    /* under mu */
    us_keys_gen *current;
    apr_time_t next_check;
    int checking;
    unsigned generation;
    /* touched only by the thread that is checking */
    us_keyfile_sig seen;
    /* shared by every process forked after create: the version of the file
     * whose error was logged last, so a bad file is logged once, not once
     * per child */
    volatile apr_uint32_t *logged;
};

void us_keyfile_sig_get(const char *path, us_keyfile_sig *sig, apr_pool_t *p)
{
    struct stat st;
    (void)p;
    memset(sig, 0, sizeof(*sig));
    /* stat(2) itself: this runs on requests, and apr_stat adds nothing needed */
    if (stat(path, &st) != 0)
        return;
    sig->exists = 1;
    sig->inode = st.st_ino;
    sig->device = st.st_dev;
    sig->size = st.st_size;
    sig->mtime = apr_time_from_sec(st.st_mtim.tv_sec) + st.st_mtim.tv_nsec / 1000;
}

static int sig_equal(const us_keyfile_sig *a, const us_keyfile_sig *b)
{
    return a->exists == b->exists && a->inode == b->inode && a->device == b->device &&
           a->size == b->size && a->mtime == b->mtime;
}

/* A 32-bit digest of a signature (FNV-1a over its fields), never 0. */
static apr_uint32_t sig_hash(const us_keyfile_sig *s)
{
    const apr_uint64_t v[4] = { (apr_uint64_t)s->inode, (apr_uint64_t)s->device,
                                (apr_uint64_t)s->size, (apr_uint64_t)s->mtime };
    apr_uint32_t h = 2166136261u;
    for (int i = 0; i < 4; i++)
        for (int shift = 0; shift < 64; shift += 8)
            h = (h ^ (apr_uint32_t)((v[i] >> shift) & 0xff)) * 16777619u;
    return h ? h : 1;
}

static void gen_release(us_keys_gen *g)
{
    if (apr_atomic_dec32(&g->refs) == 0 && g->pool)
        apr_pool_destroy(g->pool);
}

static apr_status_t keystore_cleanup(void *data)
{
    us_keystore *ks = data;
    if (ks->current)
        gen_release(ks->current);
    ks->current = NULL;
    return APR_SUCCESS;
}

apr_status_t us_keystore_create(apr_pool_t *p, const char *path, const us_keyring *initial,
                                const us_keyfile_sig *initial_sig,
                                apr_interval_time_t interval, const us_logger *log,
                                us_keystore **out)
{
    us_keystore *ks = apr_pcalloc(p, sizeof(*ks));
    apr_shm_t *shm = NULL;
    apr_status_t rv;

    ks->path = apr_pstrdup(p, path);
    ks->interval = interval;
    ks->log = log;
    ks->seen = *initial_sig;
    ks->generation = 1;
    ks->next_check = apr_time_now() + interval;
    if ((rv = apr_thread_mutex_create(&ks->mu, APR_THREAD_MUTEX_DEFAULT, p)) != APR_SUCCESS)
        return rv;
    if ((rv = apr_shm_create(&shm, sizeof(apr_uint32_t), NULL, p)) != APR_SUCCESS)
        return rv;
    ks->logged = apr_shm_baseaddr_get(shm);
    *ks->logged = 0;
    ks->current = apr_pcalloc(p, sizeof(*ks->current));
    ks->current->ring = initial;
    ks->current->refs = 1;
    apr_pool_cleanup_register(p, ks, keystore_cleanup, apr_pool_cleanup_null);
    *out = ks;
    return APR_SUCCESS;
}

/* Stats the file and, when it changed, parses it into a new generation and
 * makes that current. Called by one thread at a time (ks->checking). */
static void check_file(us_keystore *ks)
{
    us_keyfile_sig sig;
    apr_pool_t *p = NULL;
    char err[512];
    const us_keyring *ring = NULL;

    /* stat before reading: a file replaced meanwhile differs at the next check */
    us_keyfile_sig_get(ks->path, &sig, NULL);
    if (sig_equal(&sig, &ks->seen))
        return;
    ks->seen = sig;
    if (apr_pool_create_unmanaged_ex(&p, NULL, NULL) != APR_SUCCESS)
        return;
    us_keyring *parsed = NULL;
    if (!sig.exists) {
        snprintf(err, sizeof(err), "cannot stat %s", ks->path);
    }
    else if (us_keyring_load(p, ks->path, &parsed, err, sizeof(err))) {
        ring = parsed;
    }
    if (!ring) {
        apr_uint32_t h = sig.exists ? sig_hash(&sig) : 0xffffffffu;
        if (apr_atomic_xchg32(ks->logged, h) != h)
            us_log(ks->log, US_LOG_ERR, 0, 1401,
                   "UploadSessionKeyFile %s: %s; the keys read before stay in force",
                   ks->path, err);
        apr_pool_destroy(p);
        return;
    }
    apr_atomic_set32(ks->logged, 0);
    us_keys_gen *g = apr_pcalloc(p, sizeof(*g));
    g->pool = p;
    g->ring = ring;
    g->refs = 1;
    apr_thread_mutex_lock(ks->mu);
    us_keys_gen *old = ks->current;
    ks->current = g;
    ks->generation++;
    apr_thread_mutex_unlock(ks->mu);
    if (old)
        gen_release(old);
    us_log(ks->log, US_LOG_INFO, 0, 1402, "UploadSessionKeyFile %s re-read: %d key(s) in force",
           ks->path, ring->keys->nelts);
}

us_keys_gen *us_keystore_acquire(us_keystore *ks, apr_time_t now)
{
    us_keys_gen *g;

    apr_thread_mutex_lock(ks->mu);
    if (ks->interval > 0 && now >= ks->next_check && !ks->checking) {
        /* this request looks at the file; the others meanwhile use the keys in force */
        ks->checking = 1;
        ks->next_check = now + ks->interval;
        apr_thread_mutex_unlock(ks->mu);
        check_file(ks);
        apr_thread_mutex_lock(ks->mu);
        ks->checking = 0;
    }
    g = ks->current;
    apr_atomic_inc32(&g->refs);
    apr_thread_mutex_unlock(ks->mu);
    return g;
}

const us_keyring *us_keys_gen_ring(const us_keys_gen *g)
{
    return g->ring;
}

void us_keystore_release(us_keys_gen *g)
{
    gen_release(g);
}

static apr_status_t release_cleanup(void *data)
{
    gen_release(data);
    return APR_SUCCESS;
}

void us_keystore_release_with(apr_pool_t *p, us_keys_gen *g)
{
    apr_pool_cleanup_register(p, g, release_cleanup, apr_pool_cleanup_null);
}

void us_keystore_set_interval(us_keystore *ks, apr_interval_time_t interval)
{
    apr_thread_mutex_lock(ks->mu);
    ks->interval = interval;
    apr_thread_mutex_unlock(ks->mu);
}

unsigned us_keystore_generation(const us_keystore *ks)
{
    apr_thread_mutex_lock(ks->mu);
    unsigned n = ks->generation;
    apr_thread_mutex_unlock(ks->mu);
    return n;
}
