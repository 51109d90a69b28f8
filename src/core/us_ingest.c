/* us_ingest.c - one round of ingestion: a closed session claimed, its
 * files decided a batch at a time (published, or failed with their
 * reason), each batch applied in one transaction; and the rounds a worker
 * runs between sessions (dead claims, the file trash, late uploads). The
 * threads that run them: us_ingest_worker.c; a direct-upload session's
 * listing: us_ingest_listing.c. Pure: APR threads, apr_dbd, jansson.
 *
 * A batch's publishes run up to us_storage_publish_width at once (s3: 16,
 * posix: 1, a plain loop) on the threads of a us_fanout, each with a pool
 * of its own. Threads rather than libcurl's multi interface inside the s3
 * backend: a file's storage part is several dependent requests (the pinned
 * copy, the delete, a HEAD on a replay, the parts of a large copy, the read
 * for the character count), written once as blocking calls behind the
 * storage interface; a multi-handle state machine would write them again.
 * Everything that reads or writes the store stays in the worker's thread
 * and order: each file is judged first (sidecar, FAIL's name check), the
 * claim is renewed while the publishes run, and the batch is applied only
 * once every publish started is answered. */
#include "us_ingest.h"
#include "us_fanout.h"
#include "us_filename.h"
#include "us_json.h"
#include "us_utf8.h"
#include "us_uuid.h"

#include <apr_atomic.h>
#include <apr_hash.h>
#include <apr_tables.h>
#include <apr_strings.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *const us_write_modes[] = { "KEEP", "OVERWRITE", "FAIL", NULL };

/* ---- per-file decisions ------------------------------------------------------ */

static apr_time_t clock_now(const us_ingest_config *cfg)
{
    return cfg->clock ? cfg->clock(cfg->clock_arg) : apr_time_now();
}

/* A failure other than an object that is gone or too large: the storage
 * did not answer, refused (credentials, permissions), or the machine ran
 * short (descriptors, memory, space, an I/O error). The batch is retried
 * (every worker of the process backs off): marking the file FAILED would
 * let the session's clear remove bytes a retry could still ingest. */
static int storage_trouble(apr_status_t rv)
{
    return rv != APR_SUCCESS && !APR_STATUS_IS_ENOENT(rv) && rv != APR_INCOMPLETE &&
           !APR_STATUS_IS_EOF(rv);
}

static int storage_down(const us_ingest_config *cfg, const us_session *s, apr_status_t rv)
{
    us_log(cfg->log, US_LOG_WARN, rv, 1013, "ingest: session %s: the file storage failed; "
           "batch retried", s->id);
    return US_INGEST_STORAGE_DOWN;
}

/* The metadata of u from its sidecar (its blob came with the pending row):
 * 1 with *meta (NULL when there is no sidecar), 0 when the sidecar is not a
 * JSON object (or too large, or gone), US_INGEST_FILE_REFUSED when the
 * storage refused reading that one object (us_storage_refused: counted
 * against the file, as a refused publish is), US_INGEST_STORAGE_DOWN when
 * it failed otherwise (the batch is retried). */
static int read_meta(apr_pool_t *p, const us_ingest_config *cfg, const us_session *s,
                     const us_pending *u, const char **meta)
{
    *meta = NULL;
    if (!u->meta_blob)
        return 1;
    char *buf;
    apr_size_t n;
    apr_status_t rv = us_storage_upload_read(cfg->storage, p, s->id, u->meta_blob,
                                             US_META_MAX_BYTES, &buf, &n);
    if (us_storage_refused(rv)) {
        us_log(cfg->log, US_LOG_WARN, rv, 1033, "ingest: session %s: the file storage refused "
               "reading the metadata sidecar of %s", s->id, u->name);
        return US_INGEST_FILE_REFUSED;
    }
    if (storage_trouble(rv))
        return storage_down(cfg, s, rv);
    if (rv == APR_SUCCESS)
        *meta = us_json_object_text(p, buf, n);
    return *meta != NULL;
}

/* 1 once the worker is asked to stop (a child's exit waits for it). */
static int stopping(volatile apr_uint32_t *stop)
{
    return stop && apr_atomic_read32(stop);
}

/* A file's storage part given up because the worker is asked to stop:
 * nothing decided, the batch is left to a replay (its file stays PENDING,
 * found published then). Internal, as US_INGEST_FILE_REFUSED is. */
#define STOPPED (-4)

/* Publishes the blob as the workspace file through st (the worker's
 * stoppable handle on the storage, us_storage_stoppable); a replay finds
 * it there already. 1 when published; 0 when the blob is gone (a missing
 * file); STOPPED when it failed once the worker was asked to stop (a cut
 * copy: nothing decided); US_INGEST_FILE_REFUSED when the storage refused
 * this one file (us_storage_refused: counted against it by the caller);
 * US_INGEST_STORAGE_DOWN for any other failure (the batch is retried). */
static int move_blob(const us_ingest_config *cfg, us_storage *st, apr_pool_t *p,
                     const us_session *s, const us_pending *u, int *moved,
                     volatile apr_uint32_t *stop)
{
    int m = 0;
    apr_status_t rv = us_storage_publish(st, p, s->id, u->blob, u->file_ingestion_id,
                                         u->etag, u->size, &m);
    /* found in place by a replay: the run that moved it may have died
     * before its sync, so it is synced again */
    if (m || rv == APR_SUCCESS)
        *moved = 1;
    if (rv != APR_SUCCESS && !APR_STATUS_IS_ENOENT(rv) && stopping(stop))
        return STOPPED; /* never a FAILED file because of a shutdown */
    if (us_storage_refused(rv)) {
        us_log(cfg->log, US_LOG_WARN, rv, 1029, "ingest: session %s: the file storage refused "
               "publishing %s", s->id, u->name);
        return US_INGEST_FILE_REFUSED;
    }
    if (rv != APR_SUCCESS && !APR_STATUS_IS_ENOENT(rv))
        return storage_down(cfg, s, rv);
    return rv == APR_SUCCESS;
}

/* Called while one file takes long (its characters read piece by piece);
 * nonzero when the claim is found lost, and the rest of the file is not
 * read. The worker's thread renews its claim there; a fan-out thread only
 * reads whether the worker's thread, which renews on its own, found it
 * lost (batch_given_up). */
typedef struct {
    int (*fn)(void *arg);
    void *arg;
} file_tick;

/* The length in characters of a published text file into *chars, -1 for
 * any other file or one that is not well-formed UTF-8. A file of one piece
 * is read whole in one request, a larger one piece by piece (tick, when
 * given, every 16 pieces), given up once *stop is set or the tick says the
 * claim is lost: a text of gigabytes would hold a stopping child's exit,
 * or the worker a session no longer its own, for as long as its read
 * lasts. 0,
 * STOPPED, US_INGEST_FILE_REFUSED when the storage refused reading that one
 * object (us_storage_refused: counted against the file), or
 * US_INGEST_STORAGE_DOWN when it could not be read otherwise (the batch is
 * retried: the file is found published then). */
static int count_characters(const us_ingest_config *cfg, us_storage *st, apr_pool_t *p,
                            const us_session *s, const us_pending *u, long long *chars,
                            const file_tick *tick, volatile apr_uint32_t *stop)
{
    enum { PIECE = 64 * 1024 };
    us_storage_reader *rd;
    us_utf8_counter c;
    char *buf;
    apr_size_t n;
    apr_status_t rv = APR_INCOMPLETE;
    *chars = -1;
    if (!us_filename_is_text(u->name))
        return 0;
    memset(&c, 0, sizeof(c));
    if (u->size <= PIECE) {
        rv = us_storage_file_read(st, p, u->file_ingestion_id, PIECE, &buf, &n);
        if (rv == APR_SUCCESS)
            us_utf8_count(&c, buf, n);
    }
    if (rv == APR_INCOMPLETE) {
        rv = us_storage_file_open(st, p, u->file_ingestion_id, &rd);
        buf = apr_palloc(p, PIECE);
        for (apr_off_t off = 0; rv == APR_SUCCESS;) {
            if (stopping(stop))
                return STOPPED;
            n = PIECE;
            rv = us_storage_read_at(rd, off, buf, &n);
            if (rv != APR_SUCCESS || n == 0)
                break;
            us_utf8_count(&c, buf, n);
            off += (apr_off_t)n;
            if (tick && off % (16 * PIECE) == 0 && tick->fn(tick->arg))
                return STOPPED;
        }
    }
    if (rv != APR_SUCCESS && !APR_STATUS_IS_EOF(rv) && stopping(stop))
        return STOPPED; /* a read cut short (us_storage_stoppable) */
    if (us_storage_refused(rv)) {
        us_log(cfg->log, US_LOG_WARN, rv, 1034, "ingest: session %s: the file storage refused "
               "reading %s to count its characters", s->id, u->name);
        return US_INGEST_FILE_REFUSED;
    }
    if (rv != APR_SUCCESS && !APR_STATUS_IS_EOF(rv)) {
        us_log(cfg->log, US_LOG_WARN, rv, 1015, "ingest: session %s: counting the characters of %s "
               "failed; batch retried", s->id, u->name);
        return US_INGEST_STORAGE_DOWN;
    }
    *chars = us_utf8_count_end(&c);
    return 0;
}

/* What decide() settles before touching the workspace file: the rules that
 * depend on the store (sidecar, FAIL's name check), in the worker's thread
 * and the batch's order. *go is 1 when the file is to be published; r is
 * final otherwise. 0, or -1 on a store error, US_INGEST_FILE_REFUSED or
 * US_INGEST_STORAGE_DOWN. */
static int judge(us_db *db, apr_pool_t *p, const us_ingest_config *cfg, const us_session *s,
                 const us_pending *u, us_ingest_result *r, int *go)
{
    apr_array_header_t *same;
    *go = 0;
    memset(r, 0, sizeof(*r));
    r->name = u->name;
    r->file_id = u->file_ingestion_id;
    r->size = u->size;
    r->characters = -1;
    r->status = "FAILED";
    if (u->size == 0) {
        r->reason = "EMPTY_FILE";
        return 0;
    }
    int meta_ok = read_meta(p, cfg, s, u, &r->meta);
    if (meta_ok < 0)
        return meta_ok;
    if (!meta_ok) {
        r->reason = "FAILED_TO_PARSE_META";
        return 0;
    }
    if (strcmp(s->write_mode, "FAIL") == 0) {
        if (us_workspace_file_ids_by_name(db, p, s->workspace, u->name, &same) != US_DB_OK)
            return -1;
        /* our own id counts as absent: a replay after the commit never gets here */
        for (int i = 0; i < same->nelts; i++)
            if (strcmp(APR_ARRAY_IDX(same, i, const char *), r->file_id) != 0) {
                r->reason = "FILE_ALREADY_EXISTS";
                return 0;
            }
    }
    *go = 1;
    return 0;
}

/* The storage part of a file judged to go: publishes it and counts its
 * characters, through st (the batch's stoppable handle: a stop cuts its
 * requests short). Touches neither the store nor any pool but p: runs on
 * a fan-out thread. 0, or STOPPED, US_INGEST_FILE_REFUSED or
 * US_INGEST_STORAGE_DOWN (nothing decided). */
static int publish(const us_ingest_config *cfg, us_storage *st, apr_pool_t *p,
                   const us_session *s, const us_pending *u, us_ingest_result *r, int *moved,
                   const file_tick *tick, volatile apr_uint32_t *stop)
{
    int published = move_blob(cfg, st, p, s, u, moved, stop);
    if (published < 0)
        return published;
    if (!published) {
        r->reason = "FILE_NOT_FOUND";
        return 0;
    }
    int d = count_characters(cfg, st, p, s, u, &r->characters, tick, stop);
    if (d != 0)
        return d;
    r->status = "FINISHED";
    r->overwrite = strcmp(s->write_mode, "OVERWRITE") == 0;
    return 0;
}

/* Decides one file; returns 0, or -1 on a store error, STOPPED,
 * US_INGEST_FILE_REFUSED or US_INGEST_STORAGE_DOWN (nothing decided). */
static int decide(us_db *db, apr_pool_t *p, const us_ingest_config *cfg, us_storage *st,
                  const us_session *s, const us_pending *u, us_ingest_result *r, int *moved,
                  const file_tick *tick, volatile apr_uint32_t *stop)
{
    int go = 0;
    int d = judge(db, p, cfg, s, u, r, &go);
    return d != 0 || !go ? d : publish(cfg, st, p, s, u, r, moved, tick, stop);
}

/* A change of the round's own found its claim gone (detail: what that
 * means for the change, or NULL): another worker took the session over once
 * the lease lapsed (US1008, counted in ingest_claims_lost_total), or the
 * session, claimed before it was, was aborted with its workspace (US1035, not
 * counted: nothing of it is left to ingest; ABORTED reads as absent). A
 * session claimed ABORTED (to clear its uploads) was taken over.
 * US_INGEST_CLAIM_LOST either way. */
static int claim_gone(us_db *db, apr_pool_t *p, const us_ingest_config *cfg, const us_session *s,
                      const char *detail)
{
    us_session now; /* the time read shapes its status alone, not whether it is found */
    us_db_rc rc = strcmp(s->status, "ABORTED") != 0
                      ? us_session_by_id(db, p, s->id, apr_time_now(), &now) : US_DB_OK;
    if (rc == US_DB_NOTFOUND) {
        us_log(cfg->log, US_LOG_INFO, 0, 1035, "ingest: session %s was aborted with its "
               "workspace; its ingestion ends", s->id);
        return US_INGEST_CLAIM_LOST;
    }
    const char *unknown = rc == US_DB_OK ? "" : apr_psprintf(p, " (taken over or aborted: the "
                                                            "store did not say: %s)", us_db_error(db));
    if (detail)
        us_log(cfg->log, US_LOG_WARN, 0, 1008, "ingest: session %s: the claim is lost%s; %s",
               s->id, unknown, detail);
    else
        us_log(cfg->log, US_LOG_WARN, 0, 1008, "ingest: session %s was taken over%s", s->id,
               unknown);
    if (rc == US_DB_OK)
        us_metrics_ingest_claim_lost(cfg->metrics);
    return US_INGEST_CLAIM_LOST;
}

/* Renews the claim once a third of the lease has passed since *beat: a
 * batch's moves may outlast the lease (object storage, a loaded machine),
 * or another worker takes the session over and the batch is fenced off,
 * again and again. 0, or US_INGEST_CLAIM_LOST when it was taken over
 * (logged). */
static int renew(us_db *db, apr_pool_t *p, const us_ingest_config *cfg, const us_session *s,
                 apr_time_t *beat)
{
    apr_time_t t = clock_now(cfg);
    if (!s->ingest_owner || t - *beat <= cfg->lease / 3)
        return 0;
    us_db_rc rc = us_ingest_heartbeat(db, p, s->id, s->ingest_owner, t);
    if (rc == US_DB_CONFLICT)
        return claim_gone(db, p, cfg, s, NULL);
    if (rc == US_DB_OK) /* a failed renewal is tried again at the next call */
        *beat = t;
    return 0;
}

/* A store failure of decide()/judge(): logged, the batch is retried. */
static int store_failed(us_db *db, const us_ingest_config *cfg, const us_session *s)
{
    us_log(cfg->log, US_LOG_WARN, 0, 1001, "ingest: session %s: %s; batch retried", s->id,
           us_db_error(db));
    return -1;
}

/* A serial batch's claim, renewed inside a long file too (a text file of
 * gigabytes read for its characters may outlast the lease: another worker
 * would take the session over and meet the same file, again and again). */
typedef struct {
    us_db *db;
    apr_pool_t *p;
    const us_ingest_config *cfg;
    const us_session *s;
    apr_time_t beat;
    int lost; /* US_INGEST_CLAIM_LOST once a renewal found the claim gone, else 0 */
} serial_claim;

static int renew_serial(void *arg)
{
    serial_claim *c = arg;
    if (!c->lost) /* found gone once: logged and counted once */
        c->lost = renew(c->db, c->p, c->cfg, c->s, &c->beat);
    return c->lost;
}

/* Decides the batch one file after the other in the worker's thread; a
 * stop leaves the rest to a replay (US_INGEST_CUT_SHORT). A file the
 * storage refused is marked in refused[] and the others go on. */
static int decide_serial(us_db *db, apr_pool_t *p, const us_ingest_config *cfg,
                         us_storage *st, const us_session *s, const apr_array_header_t *pending,
                         apr_array_header_t *results, char *refused, int *moved,
                         volatile apr_uint32_t *stop)
{
    serial_claim claim = { db, p, cfg, s, clock_now(cfg), 0 };
    const file_tick tick = { renew_serial, &claim };
    for (int i = 0; i < pending->nelts; i++) {
        if (stopping(stop))
            return US_INGEST_CUT_SHORT;
        int d = decide(db, p, cfg, st, s, &APR_ARRAY_IDX(pending, i, us_pending),
                       apr_array_push(results), moved, &tick, stop);
        if (claim.lost) /* found inside the file, which was given up */
            return claim.lost;
        /* blobs moved so far are found in place when the batch is replayed */
        if (d == US_INGEST_STORAGE_DOWN) /* logged as 1013 */
            return d;
        if (d == STOPPED)
            return US_INGEST_CUT_SHORT;
        if (d == US_INGEST_FILE_REFUSED) /* logged as 1029, 1033 or 1034 */
            refused[i] = 1;
        else if (d < 0)
            return store_failed(db, cfg, s);
        if (renew_serial(&claim))
            return claim.lost;
    }
    return 0;
}

/* One publish of a wide batch, and what it came to. */
typedef struct {
    const us_pending *u;
    us_ingest_result *r;
    int at;    /* its place in the batch */
    int rc;    /* publish()'s */
    int moved;
} publish_task;

typedef struct {
    us_db *db;
    apr_pool_t *p; /* the worker's: the ticks' only */
    const us_ingest_config *cfg;
    us_storage *st; /* the batch's stoppable handle */
    const us_session *s;
    publish_task *tasks;
    apr_time_t beat;
    int lost;      /* the claim was taken over (US_INGEST_CLAIM_LOST), or the
                    * worker asked to stop (US_INGEST_CUT_SHORT); 0: neither */
    volatile apr_uint32_t *stop; /* the worker's: no new publish once set */
    volatile apr_uint32_t given_up; /* set with lost = US_INGEST_CLAIM_LOST */
} wide_batch;

static int batch_given_up(void *arg)
{
    return apr_atomic_read32(arg) != 0;
}

static int run_publish(void *arg, int i, apr_pool_t *tp)
{
    wide_batch *b = arg;
    publish_task *t = &b->tasks[i];
    const file_tick given_up = { batch_given_up, (void *)&b->given_up };
    t->rc = publish(b->cfg, b->st, tp, b->s, t->u, t->r, &t->moved, &given_up, b->stop);
    /* the rest would fail alike: the batch is retried (a refusal is this
     * file's alone); stopped: the batch is left to a replay */
    return t->rc == US_INGEST_STORAGE_DOWN || t->rc == STOPPED;
}

static int tick_renew(void *arg)
{
    wide_batch *b = arg;
    if (!b->lost) {
        b->lost = stopping(b->stop) ? US_INGEST_CUT_SHORT
                                    : renew(b->db, b->p, b->cfg, b->s, &b->beat);
        if (b->lost == US_INGEST_CLAIM_LOST) /* a long file being read is given up */
            apr_atomic_set32(&b->given_up, 1);
    }
    return b->lost != 0;
}

/* Decides the batch with up to width publishes at once: every file is
 * judged first, in order, in the worker's thread (the store's rules); the
 * files to publish then go to us_fanout, while this thread renews the
 * claim. Returns once every publish started is answered, so that nothing
 * is in flight when the batch is applied or given up. The files the
 * storage refused are marked in refused[]. */
static int decide_wide(us_db *db, apr_pool_t *p, const us_ingest_config *cfg,
                       us_storage *st, const us_session *s, const apr_array_header_t *pending,
                       apr_array_header_t *results, char *refused, int width, int *moved,
                       volatile apr_uint32_t *stop)
{
    wide_batch b = { db, p, cfg, st, s, NULL, clock_now(cfg), 0, stop, 0 };
    int n = 0;
    b.tasks = apr_palloc(p, sizeof(publish_task) * (apr_size_t)pending->nelts);
    for (int i = 0; i < pending->nelts; i++) {
        const us_pending *u = &APR_ARRAY_IDX(pending, i, us_pending);
        us_ingest_result *r = apr_array_push(results);
        int go = 0;
        if (stopping(stop))
            return US_INGEST_CUT_SHORT;
        int d = judge(db, p, cfg, s, u, r, &go);
        if (d == US_INGEST_STORAGE_DOWN)
            return d;
        if (d == US_INGEST_FILE_REFUSED) /* its sidecar's read: logged as 1033 */
            refused[i] = 1;
        else if (d < 0)
            return store_failed(db, cfg, s);
        if (go)
            b.tasks[n++] = (publish_task){ u, r, i, US_INGEST_STORAGE_DOWN, 0 };
        if ((d = renew(db, p, cfg, s, &b.beat)) != 0)
            return d;
    }
    int started = 0;
    apr_status_t rv = us_fanout_run(p, n, width, run_publish, &b, tick_renew, &b,
                                    cfg->lease / 6 > 0 ? cfg->lease / 6 : apr_time_from_sec(1),
                                    &started);
    int down = 0, stopped = 0;
    for (int i = 0; i < started; i++) {
        *moved |= b.tasks[i].moved;
        down |= b.tasks[i].rc == US_INGEST_STORAGE_DOWN;
        stopped |= b.tasks[i].rc == STOPPED;
        if (b.tasks[i].rc == US_INGEST_FILE_REFUSED)
            refused[b.tasks[i].at] = 1;
    }
    if (b.lost)
        return b.lost;
    if (stopped)
        return US_INGEST_CUT_SHORT;
    if (down)
        return US_INGEST_STORAGE_DOWN; /* logged as 1013 */
    if (started < n) { /* nothing could run them (out of memory): the batch is retried */
        us_log(cfg->log, US_LOG_WARN, rv, 1240, "ingest: session %s: cannot run the batch's "
               "publishes; batch retried", s->id);
        return US_INGEST_STORAGE_DOWN;
    }
    if (rv != APR_SUCCESS) /* they ran in this thread, the claim renewed between them */
        us_log(cfg->log, US_LOG_WARN, rv, 1240, "ingest: session %s: could not start the "
               "publishing threads; published in the worker's thread", s->id);
    return 0;
}

/* The last name of the batches a claim applied: one buffer for the claim,
 * grown only for a longer name (a copy per batch would stay in the claim's
 * pool until it ends). */
typedef struct {
    apr_pool_t *pool;
    char *name;
    apr_size_t cap;
} batch_cursor;

static void cursor_set(batch_cursor *c, const char *name)
{
    apr_size_t n = strlen(name) + 1;
    if (n > c->cap) {
        c->cap = n < 256 ? 256 : 2 * n;
        c->name = apr_palloc(c->pool, c->cap);
    }
    memcpy(c->name, name, n);
}

/* How long a session waits after a file's n-th refusal (1..): pause,
 * doubled per refusal counted before. */
static apr_interval_time_t refusal_delay(const us_ingest_config *cfg, long long n)
{
    apr_interval_time_t d = cfg->refusal_pause > 0 ? cfg->refusal_pause : US_INGEST_REFUSAL_PAUSE;
    for (long long i = 1; i < n && i < US_INGEST_PUBLISH_TRIES; i++)
        d *= 2;
    return d;
}

/* The files of a batch the storage refused (a publish, its sidecar's or
 * its characters' read): each refusal is counted on the file's row; a file
 * refused US_INGEST_PUBLISH_TRIES times becomes FAILED (UNKNOWN_ERROR) in
 * results, and *given_up set for it. The files with tries left keep
 * refused[] set (they stay PENDING: the batch is applied without them),
 * and *wait grows to the longest of their delays. 0, or -1 on a store
 * error, US_INGEST_CLAIM_LOST on a lost claim. Rounds that meet an
 * outage never get here: an outage counts against no file. */
static int count_refusals(us_db *db, apr_pool_t *p, const us_ingest_config *cfg,
                          const us_session *s, const apr_array_header_t *pending,
                          apr_array_header_t *results, char *refused, char *given_up,
                          apr_interval_time_t *wait)
{
    for (int i = 0; i < pending->nelts; i++) {
        const us_pending *u = &APR_ARRAY_IDX(pending, i, us_pending);
        us_ingest_result *r = &APR_ARRAY_IDX(results, i, us_ingest_result);
        long long n = 0;
        if (!refused[i])
            continue;
        us_db_rc rc = us_ingest_publish_refused(db, p, s, u->name, &n);
        if (rc == US_DB_CONFLICT)
            return claim_gone(db, p, cfg, s, NULL);
        if (rc != US_DB_OK && rc != US_DB_NOTFOUND) /* NOTFOUND: decided, the apply skips it */
            return store_failed(db, cfg, s);
        if (rc == US_DB_OK && n < US_INGEST_PUBLISH_TRIES) {
            apr_interval_time_t d = refusal_delay(cfg, n);
            us_log(cfg->log, US_LOG_WARN, 0, 1030, "ingest: session %s: %s refused %d of %d "
                   "times; tried again later", s->id, u->name, (int)n, US_INGEST_PUBLISH_TRIES);
            *wait = d > *wait ? d : *wait;
            continue;
        }
        refused[i] = 0;
        r->status = "FAILED";
        r->reason = "UNKNOWN_ERROR";
        if (rc == US_DB_NOTFOUND) /* no longer PENDING: its bytes are not this batch's */
            continue;
        given_up[i] = 1;
        us_log(cfg->log, US_LOG_WARN, 0, 1031, "ingest: session %s: %s refused %d times; "
               "FAILED (UNKNOWN_ERROR)", s->id, u->name, US_INGEST_PUBLISH_TRIES);
    }
    return 0;
}

/* Decides and applies one batch of the files named after after->name;
 * returns the batch's files (decided, or refused with tries left: those
 * stay PENDING, *wait grows to their delay, and the session is taken
 * again once it has passed), *decided of them decided; 0 when none were
 * pending, -1 on a store error, US_INGEST_CLAIM_LOST or US_INGEST_CUT_SHORT
 * (nothing applied: a replay decides the batch again), US_INGEST_STORAGE_DOWN
 * on a storage outage. Once the batch is applied, after->name is its last
 * name. */
static long ingest_batch(us_db *db, apr_pool_t *p, const us_ingest_config *cfg,
                         const us_session *s, batch_cursor *after, volatile apr_uint32_t *stop,
                         apr_interval_time_t *wait, long *decided)
{
    apr_array_header_t *pending, *results, *deleted = NULL;
    int moved = 0;

    *decided = 0;
    if (us_ingest_pending(db, p, s->id, after->name, cfg->batch, &pending) != US_DB_OK)
        return -1;
    if (pending->nelts == 0)
        return 0;
    results = apr_array_make(p, pending->nelts, sizeof(us_ingest_result));
    char *refused = apr_pcalloc(p, (apr_size_t)pending->nelts);
    char *given_up = apr_pcalloc(p, (apr_size_t)pending->nelts);
    int width = cfg->publish_width > 0 ? cfg->publish_width
                                       : us_storage_publish_width(cfg->storage);
    /* the publishes' requests are cut short once the worker is asked to
     * stop: a stopping child waits for no copy of gigabytes */
    us_storage *st = stop ? us_storage_stoppable(cfg->storage, p, stop) : cfg->storage;
    /* blobs moved before a failure are found in place when the batch is
     * replayed; a batch of one file goes wide too, where the worker's
     * thread renews the claim while the publish runs (a copy of
     * gigabytes may outlast the lease) */
    int d = width > 1
                ? decide_wide(db, p, cfg, st, s, pending, results, refused, width, &moved, stop)
                : decide_serial(db, p, cfg, st, s, pending, results, refused, &moved, stop);
    if (d == 0)
        d = count_refusals(db, p, cfg, s, pending, results, refused, given_up, wait);
    if (d != 0)
        return d;
    /* the files refused with tries left are not this batch's to decide */
    apr_array_header_t *decide = apr_array_make(p, pending->nelts, sizeof(us_ingest_result));
    for (int i = 0; i < pending->nelts; i++)
        if (!refused[i])
            *(us_ingest_result *)apr_array_push(decide) = APR_ARRAY_IDX(results, i, us_ingest_result);
    /* the moves must be durable before the store says FINISHED */
    apr_status_t srv = moved ? us_storage_publish_sync(cfg->storage, p) : APR_SUCCESS;
    if (srv != APR_SUCCESS) {
        /* retried: the replay finds the files in place and syncs again */
        us_log(cfg->log, US_LOG_WARN, srv, 1002, "ingest: session %s: making the published files "
               "durable failed; batch retried", s->id);
        return US_INGEST_STORAGE_DOWN;
    }
    us_db_rc rc = decide->nelts
                      ? us_ingest_apply(db, p, s, decide, clock_now(cfg), &deleted)
                      : US_DB_OK;
    if (rc == US_DB_CONFLICT) /* aborted with its workspace: the batch's ids are in the file trash */
        return claim_gone(db, p, cfg, s, "the batch is not recorded");
    if (rc != US_DB_OK) {
        us_log(cfg->log, rc == US_DB_BUSY ? US_LOG_WARN : US_LOG_ERR, 0, 1003, "ingest: session %s: %s",
              s->id, us_db_error(db));
        return -1;
    }
    /* counted once applied; a batch replayed by a worker that took over a
     * lapsed lease counts again the files the first worker had decided */
    for (int i = 0; i < decide->nelts; i++) {
        const us_ingest_result *r = &APR_ARRAY_IDX(decide, i, us_ingest_result);
        us_metrics_file(cfg->metrics, us_outcome_of(r->status, r->reason));
    }
    for (int i = 0; deleted && i < deleted->nelts; i++) /* replaced by OVERWRITE */
        us_storage_file_delete(cfg->storage, p, APR_ARRAY_IDX(deleted, i, const char *));
    /* a refused publish may have left a copy (s3: the copy answered, the
     * upload's delete refused; or its characters' read refused); a crash
     * before this leaves it to the files sweep. The upload's blob goes with
     * the session's clear. */
    for (int i = 0; i < pending->nelts; i++)
        if (given_up[i])
            us_storage_file_delete(cfg->storage, p,
                                   APR_ARRAY_IDX(pending, i, us_pending).file_ingestion_id);
    cursor_set(after, APR_ARRAY_IDX(pending, pending->nelts - 1, us_pending).name);
    *decided = decide->nelts;
    return pending->nelts;
}

/* A direct-upload session: its one listing becomes its upload rows, unless
 * one was recorded already. 0 to go on, US_INGEST_CLAIM_LOST, -1 on a
 * store error, US_INGEST_STORAGE_DOWN on a storage outage. */
static int record_listing(us_db *db, apr_pool_t *p, const us_ingest_config *cfg,
                          const us_session *s)
{
    apr_array_header_t *objs;
    us_listing_left_out left;
    int recorded = 0;
    /* an expired session's close is dated its expires_at, where its policy ends */
    apr_status_t rv = us_ingest_listing(cfg->storage, p, s->id, cfg->max_files,
                                        us_direct_written_by(s), apr_time_now(), &objs, &left);
    if (us_storage_unavailable(rv)) {
        us_log(cfg->log, US_LOG_WARN, rv, 1013, "ingest: session %s: the file storage does not "
               "answer; batch retried", s->id);
        return US_INGEST_STORAGE_DOWN;
    }
    if (rv != APR_SUCCESS) {
        us_log(cfg->log, US_LOG_WARN, rv, 1020, "ingest: session %s: listing its uploads failed; "
               "retried", s->id);
        return US_INGEST_STORAGE_DOWN;
    }
    us_db_rc rc = us_ingest_record_listing(db, p, s, objs, &recorded);
    if (rc == US_DB_CONFLICT)
        return claim_gone(db, p, cfg, s, NULL);
    if (rc != US_DB_OK) {
        us_log(cfg->log, US_LOG_WARN, 0, 1003, "ingest: session %s: %s", s->id, us_db_error(db));
        return -1;
    }
    if (recorded)
        us_log(cfg->log, US_LOG_INFO, 0, 1019, "ingest: session %s: listing of %d objects "
               "recorded as its uploads", s->id, objs->nelts);
    if (recorded && left.over)
        us_log(cfg->log, US_LOG_WARN, 0, 1018, "ingest: session %s: %" APR_INT64_T_FMT " files "
               "past UploadSessionMaxFilesPerSession (%" APR_INT64_T_FMT ") left out and removed",
               s->id, (apr_int64_t)left.over, (apr_int64_t)cfg->max_files);
    if (recorded && left.sidecars)
        us_log(cfg->log, US_LOG_WARN, 0, 1028, "ingest: session %s: %" APR_INT64_T_FMT " sidecars "
               "of files not kept (UploadSessionMaxFilesPerSession %" APR_INT64_T_FMT ") left out "
               "and removed", s->id, (apr_int64_t)left.sidecars, (apr_int64_t)cfg->max_files);
    if (recorded && left.unnamed)
        us_log(cfg->log, US_LOG_WARN, 0, 1026, "ingest: session %s: %" APR_INT64_T_FMT " objects "
               "whose key is no valid file name (or another's name) left out and removed",
               s->id, (apr_int64_t)left.unnamed);
    if (recorded && left.late)
        us_log(cfg->log, US_LOG_WARN, 0, 1027, "ingest: session %s: %" APR_INT64_T_FMT " objects "
               "written after its close left out and removed", s->id, (apr_int64_t)left.late);
    return 0;
}

/* Once every file of a session is decided, nothing refers to what is left
 * of its uploads: the blobs of FAILED files, sidecars (their metadata is in
 * the store), and files a crash left unrecorded. An upload still arriving
 * for the closed session keeps its unfinished file (it fails with CONFLICT
 * and removes it). Entries left while the storage does not answer (s3:
 * the listing or deletes failed in an outage) would wait for the last
 * clear, a grace after expires_at: US_INGEST_STORAGE_DOWN, the caller
 * requeues it. 0 otherwise. */
static int clear_session(const us_ingest_config *cfg, apr_pool_t *p, const char *id)
{
    int kept = us_storage_session_clear(cfg->storage, p, id);
    if (!kept)
        return 0;
    apr_status_t rv = us_storage_check(cfg->storage, p);
    if (us_storage_unavailable(rv)) {
        us_log(cfg->log, US_LOG_WARN, rv, 1025, "ingest: session %s: %d entries left and the file "
               "storage does not answer; cleared again later", id, kept);
        return US_INGEST_STORAGE_DOWN;
    }
    us_log(cfg->log, US_LOG_INFO, 0, 1004, "ingest: session %s: %d entries left (uploads still "
           "arriving)", id, kept);
    return 0;
}

/* What ended a round, counted: a store failure (-1); a claim lost is
 * counted where it is found (claim_gone); the stop and a storage outage
 * are not counted. */
static void count_end(const us_ingest_config *cfg, long n)
{
    if (n == -1)
        us_metrics_worker_store_error(cfg->metrics);
}

/* A round that ends early hands its session back to the queue: once the
 * delay of the files the storage refused has passed (wait > 0), so that
 * they are not tried again before their pause, else at once. A no-op for
 * a claim already lost. */
static void hand_back(us_db *db, apr_pool_t *p, const us_ingest_config *cfg, const char *id,
                      const char *owner, apr_interval_time_t wait)
{
    if (wait > 0 && us_ingest_requeue_later(db, p, id, owner, clock_now(cfg), wait) == US_DB_OK)
        return;
    (void)us_ingest_requeue(db, p, id, owner);
}

/* The refused files alone are left: the session is taken again once their
 * delay has passed (by the claim's clock), not at once, and keeps its
 * uploads until they are decided. */
static void requeue_refused(us_db *db, apr_pool_t *p, const us_ingest_config *cfg,
                            const us_session *s, const char *owner, apr_interval_time_t wait)
{
    const char *id = s->id;
    us_db_rc rc = us_ingest_requeue_later(db, p, id, owner, clock_now(cfg), wait);
    if (rc == US_DB_OK)
        us_log(cfg->log, US_LOG_INFO, 0, 1032, "ingest: session %s: files the file storage "
               "refused are left; the session is taken again in %" APR_TIME_T_FMT " ms", id,
               (apr_time_t)apr_time_as_msec(wait));
    else if (rc == US_DB_CONFLICT)
        (void)claim_gone(db, p, cfg, s, NULL);
    else
        (void)us_ingest_requeue(db, p, id, owner);
}

/* The session's end, once nothing is left and its uploads are cleared:
 * 0, or -1 on a store failure, which leaves it claimed until its lease
 * lapses (claimed again then, it is found with nothing left and ended). */
static int mark_done(us_db *db, apr_pool_t *p, const us_ingest_config *cfg, const us_session *s,
                     const char *owner)
{
    const char *id = s->id;
    us_db_rc rc = us_ingest_done(db, p, id, owner);
    if (rc == US_DB_OK) {
        us_log(cfg->log, US_LOG_INFO, 0, 1007, "ingest: session %s done", id);
        return 0;
    }
    if (rc == US_DB_CONFLICT) {
        (void)claim_gone(db, p, cfg, s, NULL);
        return 0;
    }
    us_log(cfg->log, rc == US_DB_BUSY ? US_LOG_WARN : US_LOG_ERR, 0, 1003, "ingest: session %s: %s",
           id, us_db_error(db));
    count_end(cfg, -1);
    return -1;
}

long us_ingest_once(us_db *db, apr_pool_t *p, const us_ingest_config *cfg, const char *owner,
                    volatile apr_uint32_t *stop, int *claimed)
{
    us_session s;
    apr_time_t now = clock_now(cfg);
    us_db_rc rc = us_ingest_claim(db, p, owner, now, now - cfg->lease, &s);
    long total = 0;

    if (claimed)
        *claimed = rc == US_DB_OK;
    if (rc == US_DB_NOTFOUND)
        return 0;
    if (rc != US_DB_OK) {
        if (rc != US_DB_BUSY)
            us_log(cfg->log, US_LOG_ERR, 0, 1005, "ingest: claim: %s", us_db_error(db));
        count_end(cfg, -1);
        return -1;
    }
    us_log(cfg->log, US_LOG_INFO, 0, 1006, "ingest: session %s (%s, %s) claimed by %s", s.id, s.workspace,
          s.write_mode, owner);
    apr_pool_t *bp;
    batch_cursor after = { p, NULL, 0 }; /* the files up to its name are decided */
    apr_pool_create(&bp, p);
    cursor_set(&after, "");
    if (s.direct == US_DIRECT_UNLISTED && strcmp(s.status, "ABORTED") != 0) {
        int lr = record_listing(db, bp, cfg, &s);
        if (lr != 0) {
            count_end(cfg, lr);
            if (lr != US_INGEST_CLAIM_LOST)
                us_ingest_requeue(db, bp, s.id, owner);
            apr_pool_destroy(bp);
            return lr;
        }
    }
    apr_interval_time_t wait = 0; /* files refused with tries left: the longest delay */
    for (;;) {
        long decided = 0;
        apr_pool_clear(bp);
        if (stop && apr_atomic_read32(stop)) {
            hand_back(db, bp, cfg, s.id, owner, wait);
            break;
        }
        long n = ingest_batch(db, bp, cfg, &s, &after, stop, &wait, &decided);
        if (n < 0) {
            count_end(cfg, n);
            if (n != US_INGEST_CLAIM_LOST) /* the new owner's now */
                hand_back(db, bp, cfg, s.id, owner, wait);
            total = total ? total : n;
            break;
        }
        if (n == 0 && wait > 0) {
            requeue_refused(db, bp, cfg, &s, owner, wait);
            break;
        }
        if (n == 0) {
            /* cleared while the claim is still held: a worker killed before
             * the session is done leaves it to be claimed and cleared again;
             * once done, nothing would come back for what is left */
            if (clear_session(cfg, bp, s.id) == US_INGEST_STORAGE_DOWN) {
                us_ingest_requeue(db, bp, s.id, owner);
                total = total ? total : US_INGEST_STORAGE_DOWN;
                break;
            }
            if (mark_done(db, bp, cfg, &s, owner) < 0)
                total = total ? total : -1;
            break;
        }
        total += decided;
        if (us_ingest_heartbeat(db, bp, s.id, owner, clock_now(cfg)) == US_DB_CONFLICT) {
            (void)claim_gone(db, bp, cfg, &s, NULL);
            break;
        }
    }
    apr_pool_destroy(bp);
    return total;
}

/* A process that exists and is not a zombie (killed but not yet reaped). */
static int process_alive(long pid)
{
    char path[64], buf[512];
    if (kill((pid_t)pid, 0) != 0 && errno == ESRCH)
        return 0;
    snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 1; /* no /proc: trust kill() */
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *paren = strrchr(buf, ')'); /* "pid (comm) S ..." */
    return !(paren && paren[1] == ' ' && paren[2] == 'Z');
}

/* owner ids are "host/pid/worker" */
void us_ingest_reclaim_dead(us_db *db, apr_pool_t *p, const us_ingest_config *cfg)
{
    apr_array_header_t *claims;
    size_t hl = strlen(cfg->host);
    if (us_ingest_running(db, p, &claims) != US_DB_OK)
        return;
    for (int i = 0; i < claims->nelts; i++) {
        const us_claim *c = &APR_ARRAY_IDX(claims, i, us_claim);
        if (strncmp(c->owner, cfg->host, hl) != 0 || c->owner[hl] != '/')
            continue;
        long pid = strtol(c->owner + hl + 1, NULL, 10);
        if (pid > 0 && pid != (long)getpid() && !process_alive(pid)) {
            us_log(cfg->log, US_LOG_WARN, 0, 1009, "ingest: session %s: owner %s is gone; requeued",
                  c->session_id, c->owner);
            us_ingest_requeue(db, p, c->session_id, c->owner);
        }
    }
}

int us_ingest_sweep_trash(us_db *db, apr_pool_t *p, const us_ingest_config *cfg,
                          volatile apr_uint32_t *stop)
{
    apr_array_header_t *ids, *gone;
    if (us_file_trash_list(db, p, 1000, &ids) != US_DB_OK || ids->nelts == 0)
        return 0;
    /* the trash rows read may be a delete's whose commit is not yet on
     * disk: lost in a crash, the file would be back without its bytes */
    if (us_durable_barrier(db, p) != US_DB_OK)
        return 0;
    us_storage *st = stop ? us_storage_stoppable(cfg->storage, p, stop) : cfg->storage;
    gone = apr_array_make(p, ids->nelts, sizeof(const char *));
    for (int i = 0; i < ids->nelts && !stopping(stop); i++) {
        const char *id = APR_ARRAY_IDX(ids, i, const char *);
        apr_status_t rv = us_storage_file_delete(st, p, id);
        if (rv == APR_SUCCESS || APR_STATUS_IS_ENOENT(rv))
            APR_ARRAY_PUSH(gone, const char *) = id;
        else if (us_storage_unavailable(rv))
            break; /* each of the rest would wait its timeout: they stay for a later round */
    }
    if (us_file_trash_forget(db, p, gone) != US_DB_OK)
        return 0;
    if (gone->nelts)
        us_log(cfg->log, US_LOG_INFO, 0, 1016, "ingest: removed the bytes of %d deleted files",
               gone->nelts);
    return gone->nelts;
}

apr_interval_time_t us_ingest_late_grace(const us_ingest_config *cfg)
{
    double size = cfg->max_file_size > 0 ? (double)cfg->max_file_size : 0;
    return cfg->lease + (apr_interval_time_t)(size / US_LATE_CLEAR_MIN_RATE * APR_USEC_PER_SEC);
}

/* One call's last clears: what the storage holds, listed once for all
 * its pages (NULL: unknown, each session is asked), and when it ends. */
typedef struct {
    apr_hash_t *holding;
    int listed;
    apr_time_t until;
    int recorded;
} late_round;

/* The last clear of one session that holds something; 1 once recorded. */
static int clear_late_one(us_db *db, apr_pool_t *p, const us_ingest_config *cfg, const char *id)
{
    if (us_storage_session_clear_late(cfg->storage, p, id) != 0)
        return 0; /* objects left: due again at the next sweep */
    if (us_late_clear_done(db, p, id) != US_DB_OK)
        return 0;
    us_log(cfg->log, US_LOG_INFO, 0, 1022, "ingest: session %s: its upload policy has "
           "expired; its uploads cleared a last time", id);
    return 1;
}

/* One page of the last clear's queue from at; 1 when more may follow. The
 * sessions the storage holds nothing of are recorded in one write; the
 * others are cleared one by one while the round's time lasts, and at moves
 * past the last one tried. */
static int clear_late_page(us_db *db, apr_pool_t *p, apr_pool_t *round_pool,
                           const us_ingest_config *cfg, us_late_cursor *at, late_round *r)
{
    apr_array_header_t *due;
    us_late_due after = { at->id, at->expires_at };
    if (us_late_clear_due(db, p, clock_now(cfg), us_ingest_late_grace(cfg), at->id[0] ? &after : NULL,
                          US_LATE_CLEAR_PAGE, &due) != US_DB_OK)
        return 0;
    /* one session alone costs its own clear's two listings at most */
    if (due->nelts > 1 && !r->listed) {
        r->listed = 1;
        if (us_storage_sessions_holding(cfg->storage, round_pool, &r->holding) != APR_SUCCESS)
            r->holding = NULL;
    }
    apr_array_header_t *empty = apr_array_make(p, due->nelts ? due->nelts : 1, sizeof(const char *));
    int tried = 0;
    for (; tried < due->nelts; tried++) {
        const char *id = APR_ARRAY_IDX(due, tried, us_late_due).id;
        if (r->holding && !apr_hash_get(r->holding, id, APR_HASH_KEY_STRING)) {
            APR_ARRAY_PUSH(empty, const char *) = id;
            continue;
        }
        if (tried > 0 && apr_time_now() >= r->until)
            break; /* the rest of the page at the next call */
        r->recorded += clear_late_one(db, p, cfg, id);
    }
    int n = 0;
    if (empty->nelts && us_late_clear_done_all(db, p, empty, &n) == US_DB_OK && n > 0) {
        r->recorded += n;
        us_log(cfg->log, US_LOG_INFO, 0, 1121, "ingest: %d sessions whose upload policy has "
               "expired: nothing of them left in the storage, recorded as cleared a last time", n);
    }
    if (tried == due->nelts && due->nelts < US_LATE_CLEAR_PAGE) {
        at->id[0] = '\0'; /* the end of the queue: from its start next time */
        return 0;
    }
    const us_late_due *last = &APR_ARRAY_IDX(due, tried - 1, us_late_due);
    apr_cpystrn(at->id, last->id, sizeof(at->id));
    at->expires_at = last->expires_at;
    return 1;
}

int us_ingest_clear_late(us_db *db, apr_pool_t *p, const us_ingest_config *cfg,
                         us_late_cursor *at)
{
    late_round r = { NULL, 0, apr_time_now() + US_LATE_CLEAR_BUDGET, 0 };
    apr_pool_t *round_pool;
    int more;
    apr_pool_create(&round_pool, p);
    do {
        apr_pool_t *pp;
        apr_pool_create(&pp, round_pool);
        more = clear_late_page(db, pp, round_pool, cfg, at, &r);
        apr_pool_destroy(pp);
    } while (more && apr_time_now() < r.until);
    apr_pool_destroy(round_pool);
    return r.recorded;
}
