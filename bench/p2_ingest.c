/*
 * p2_ingest.c - ingestion of one session of N files, without httpd, for
 * profiles that do not depend on the machine's load (callgrind, strace -c)
 * and for the causes of benchmark 4's slope.
 *
 *   p2_ingest DIR N1 [N2 ...]
 *
 * In a fresh store and data directory under DIR: per N, a session of N
 * files of 1 KiB named as bench/wrk/upload.lua names them (PREFIX-TID-I.txt,
 * two wrk threads), committed by 8 threads with their own connections;
 * then it is closed and one us_ingest_once ingests it, while a second
 * thread checkpoints every 500 ms and polls the session's status every 20 ms,
 * as an ingest worker of the other child and the benchmark's poll do.
 * The connection is set up as an ingest worker's (us_db_for_batches) unless
 * P2_DEFAULT_CACHE=1 (an A/B of that setting). P2_PAGE_SIZE=N creates the
 * store with pages of N bytes (before the module's own setup runs);
 * P2_RANDOM_IDS=1 gives the files random ids instead of the module's timed
 * ones (us_uuid4_timed); P2_UPLOAD_FIRST=1 uploads every session before
 * the first is ingested, as b4 does.
 * Prints per session: files/s, the ingest connection's SQLite page-cache
 * misses per file, the WAL's size, the CPU time (and its kernel part), and for the uploads and
 * the ingestion the CPU time and the bytes the process wrote per file
 * (/proc/self/io). The sessions ingest in the same store one after the
 * other, as b4's do.
 *
 * Under callgrind, --toggle-collect=us_ingest_once counts the ingestion
 * alone. Not part of make test.
 */
#include <apr_atomic.h>
#include <apr_dbd.h>
#include <apr_file_io.h>
#include <apr_general.h>
#include <apr_strings.h>
#include <apr_thread_proc.h>
#include <sqlite3.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "us_ingest.h"
#include "us_store.h"
#include "us_store_db.h"
#include "us_uuid.h"

#define UPLOADERS 8

static us_ingest_config cfg;
static const char *root;
static volatile apr_uint32_t stop_side;
static int random_ids;

typedef struct {
    const char *sid, *tag;
    int first, n; /* this thread's files: i = first, first + UPLOADERS, ... < n */
} upload_job;

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* the kernel's part of cpu_s() */
static double sys_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static us_db *open_db(apr_pool_t *p)
{
    us_db *db = NULL;
    const char *err = NULL;
    if (us_db_open(p, cfg.store, &db, &err) != US_DB_OK) {
        fprintf(stderr, "p2_ingest: open: %s\n", err);
        exit(1);
    }
    return db;
}

static void *APR_THREAD_FUNC uploader(apr_thread_t *t, void *arg)
{
    upload_job *j = arg;
    apr_pool_t *p, *it;
    char blob[37], fid[37], body[1024];
    apr_pool_create(&p, NULL);
    apr_pool_create(&it, p);
    us_db *db = open_db(p);
    memset(body, 'x', sizeof(body));
    const char *dir = apr_pstrcat(p, root, "/data/sessions/", j->sid, NULL);
    for (int i = j->first; i < j->n; i += UPLOADERS) {
        us_upload_record u;
        const char *old = NULL;
        apr_pool_clear(it);
        us_uuid4(blob);
        if (random_ids)
            us_uuid4(fid);
        else
            us_uuid4_timed(fid, apr_time_now());
        FILE *f = fopen(apr_pstrcat(it, dir, "/", blob, NULL), "wb");
        if (!f || fwrite(body, 1, sizeof(body), f) != sizeof(body) || fclose(f) != 0) {
            fprintf(stderr, "p2_ingest: writing %s failed\n", blob);
            exit(1);
        }
        memset(&u, 0, sizeof(u));
        u.session_id = j->sid;
        /* upload.lua: PREFIX-TID-ISSUED.txt, two wrk threads */
        u.name = apr_psprintf(it, "%s-%d-%d.txt", j->tag, 1 + i % 2, 1 + i / 2);
        u.blob = blob;
        u.sha256 = "0";
        u.file_ingestion_id = fid;
        u.size = sizeof(body);
        u.uploaded_at = apr_time_now();
        if (us_upload_commit(db, it, &u, apr_time_now(), &old) != US_DB_OK) {
            fprintf(stderr, "p2_ingest: commit: %s\n", us_db_error(db));
            exit(1);
        }
    }
    us_db_close(db);
    apr_pool_destroy(p);
    (void)t;
    return NULL;
}

/* what the other child's ingest worker and the benchmark's poll do meanwhile */
static void *APR_THREAD_FUNC side(apr_thread_t *t, void *arg)
{
    const char *sid = arg;
    apr_pool_t *p, *it;
    us_session s;
    apr_pool_create(&p, NULL);
    apr_pool_create(&it, p);
    us_db *db = open_db(p);
    for (int tick = 0; !apr_atomic_read32(&stop_side); tick++) {
        apr_pool_clear(it);
        us_session_get(db, it, "p2", sid, apr_time_now(), &s);
        if (tick % 25 == 0)
            us_db_maintain(db, it);
        apr_sleep(apr_time_from_msec(20));
    }
    us_db_close(db);
    apr_pool_destroy(p);
    (void)t;
    return NULL;
}

/* bytes this process has written to storage (or -1) */
static long long written(void)
{
    char line[128];
    long long v = -1;
    FILE *f = fopen("/proc/self/io", "r");
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "write_bytes: %lld", &v) == 1)
            break;
    if (f)
        fclose(f);
    return v;
}

static long long file_size(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? (long long)sb.st_size : -1;
}

typedef struct {
    const char *id;
    int n;
    double cpu;        /* the uploads' CPU seconds */
    long long written; /* and bytes written */
} uploaded;

static void upload_session(apr_pool_t *p, us_db *db, int n, int k, uploaded *up)
{
    us_session s;
    apr_thread_t *th[UPLOADERS];
    upload_job jobs[UPLOADERS];
    apr_status_t trv;
    char id[37];
    memset(&s, 0, sizeof(s));
    us_uuid4(id);
    s.id = apr_pstrdup(p, id);
    s.workspace = "p2";
    s.user_id = "u";
    s.given_name = "A";
    s.family_name = "B";
    s.write_mode = "KEEP";
    s.created_at = apr_time_now();
    s.expires_at = s.created_at + apr_time_from_sec(36000);
    if (us_session_insert(db, p, &s, 1000, s.created_at) != US_DB_OK) {
        fprintf(stderr, "p2_ingest: session: %s\n", us_db_error(db));
        exit(1);
    }
    apr_dir_make_recursive(apr_pstrcat(p, root, "/data/sessions/", s.id, NULL),
                           APR_FPROT_OS_DEFAULT, p);
    double t0 = now_s(), uc0 = cpu_s();
    long long uw0 = written();
    for (int i = 0; i < UPLOADERS; i++) {
        jobs[i] = (upload_job){ s.id, apr_psprintf(p, "s%d", k), i, n };
        apr_thread_create(&th[i], NULL, uploader, &jobs[i], p);
    }
    for (int i = 0; i < UPLOADERS; i++)
        apr_thread_join(&trv, th[i]);
    up->id = s.id;
    up->n = n;
    up->cpu = cpu_s() - uc0;
    up->written = written() - uw0;
    fprintf(stderr, "p2_ingest: %d files uploaded in %.1f s\n", n, now_s() - t0);
}

static void ingest_session(apr_pool_t *p, us_db *db, const uploaded *up)
{
    apr_thread_t *sth;
    apr_status_t trv;
    int n = up->n;
    double uc = up->cpu;
    long long uw = up->written;
    if (us_session_close(db, p, "p2", up->id, apr_time_now()) != US_DB_OK) {
        fprintf(stderr, "p2_ingest: close: %s\n", us_db_error(db));
        exit(1);
    }
    /* the uploads' WAL is checkpointed and their files are on disk, as in
     * b4 (each upload is synced before its answer) */
    us_db_maintain(db, p);
    sync();

    sqlite3 *h = apr_dbd_native_handle(us_sqlite_of(db)->drv, us_sqlite_of(db)->h);
    int cur, hi, miss0, hit0, miss1, hit1;
    sqlite3_db_status(h, SQLITE_DBSTATUS_CACHE_MISS, &miss0, &hi, 0);
    sqlite3_db_status(h, SQLITE_DBSTATUS_CACHE_HIT, &hit0, &hi, 0);
    apr_atomic_set32(&stop_side, 0);
    apr_thread_create(&sth, NULL, side, (void *)up->id, p);
    const char *wal = apr_pstrcat(p, root, "/store.db-wal", NULL);
    long long wal0 = file_size(wal);
    double c0 = cpu_s(), k0 = sys_s();
    long long w0 = written();
    double t0 = now_s();
    long got = us_ingest_once(db, p, &cfg, "p2/1/0", NULL, NULL);
    double dt = now_s() - t0, dc = cpu_s() - c0, dk = sys_s() - k0;
    long long dw = written() - w0;
    apr_atomic_set32(&stop_side, 1);
    apr_thread_join(&trv, sth);
    sqlite3_db_status(h, SQLITE_DBSTATUS_CACHE_MISS, &miss1, &hi, 0);
    sqlite3_db_status(h, SQLITE_DBSTATUS_CACHE_HIT, &hit1, &hi, 0);
    (void)cur;
    printf("{\"files\": %d, \"ingested\": %ld, \"seconds\": %.3f, \"files_per_s\": %.0f,"
           " \"cpu_us_per_file\": %.1f, \"sys_us_per_file\": %.1f, \"cache_miss_per_file\": %.2f,"
           " \"cache_hit_per_file\": %.2f, \"wal_bytes_before\": %lld, \"wal_bytes_after\": %lld,"
           " \"written_per_file\": %.0f, \"upload_cpu_us_per_file\": %.1f,"
           " \"upload_written_per_file\": %.0f}\n",
           n, got, dt, n / dt, dc * 1e6 / n, dk * 1e6 / n, (double)(miss1 - miss0) / n,
           (double)(hit1 - hit0) / n, wal0, file_size(wal), (double)dw / n, uc * 1e6 / n,
           (double)uw / n);
    fflush(stdout);
}

/* a new database with pages of n bytes; an existing one keeps its own */
static void set_page_size(const char *path, int n)
{
    sqlite3 *h = NULL;
    char sql[64];
    snprintf(sql, sizeof(sql), "PRAGMA page_size=%d; PRAGMA journal_mode=WAL;", n);
    if (sqlite3_open(path, &h) != SQLITE_OK || sqlite3_exec(h, sql, NULL, NULL, NULL) != SQLITE_OK) {
        fprintf(stderr, "p2_ingest: page size: %s\n", h ? sqlite3_errmsg(h) : "open failed");
        exit(1);
    }
    sqlite3_close(h);
}

int main(int argc, const char *const argv[])
{
    apr_pool_t *p;
    const char *err = NULL;
    if (argc < 3) {
        fprintf(stderr, "usage: p2_ingest DIR N1 [N2 ...]\n");
        return 2;
    }
    apr_app_initialize(&argc, &argv, NULL);
    apr_pool_create(&p, NULL);
    apr_dbd_init(p);
    root = argv[1];
    apr_dir_make_recursive(apr_pstrcat(p, root, "/data/files", NULL), APR_FPROT_OS_DEFAULT, p);
    const char *ps = getenv("P2_PAGE_SIZE");
    if (ps && *ps)
        set_page_size(apr_pstrcat(p, root, "/store.db", NULL), atoi(ps));
    us_store_cfg *store = NULL;
    if (us_store_configure(p, "sqlite3", apr_pstrcat(p, root, "/store.db", NULL), &store,
                           &err) != US_DB_OK ||
        us_store_migrate((cfg.store = store), p, &err) != US_DB_OK ||
        us_storage_configure(p, "posix", apr_pstrcat(p, root, "/data", NULL), NULL, &cfg.storage,
                             &err) != APR_SUCCESS) {
        fprintf(stderr, "p2_ingest: %s\n", err ? err : "setup failed");
        return 1;
    }
    const char *ri = getenv("P2_RANDOM_IDS");
    random_ids = ri && strcmp(ri, "1") == 0;
    cfg.threads = 1;
    cfg.batch = 256; /* src/httpd/children.c */
    cfg.poll = apr_time_from_msec(250);
    cfg.lease = apr_time_from_sec(60);
    cfg.host = "p2";
    us_db *db = open_db(p);
    /* as an ingest worker's connection (us_ingest_worker.c), unless P2_DEFAULT_CACHE=1 */
    const char *dc = getenv("P2_DEFAULT_CACHE");
    if (!(dc && strcmp(dc, "1") == 0))
        us_db_for_batches(db, p);
    /* P2_UPLOAD_FIRST=1: every session uploaded before the first is
     * ingested, as b4 does; else each is ingested before the next upload */
    const char *uf = getenv("P2_UPLOAD_FIRST");
    int first = uf && strcmp(uf, "1") == 0;
    uploaded *ups = apr_pcalloc(p, sizeof(uploaded) * (apr_size_t)argc);
    for (int i = 2; i < argc; i++) {
        upload_session(p, db, atoi(argv[i]), i - 1, &ups[i]);
        if (!first)
            ingest_session(p, db, &ups[i]);
    }
    for (int i = 2; first && i < argc; i++)
        ingest_session(p, db, &ups[i]);
    us_db_close(db);
    apr_pool_destroy(p);
    apr_terminate();
    return 0;
}
