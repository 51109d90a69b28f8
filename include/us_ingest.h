/*
 * us_ingest.h - background ingestion of closed sessions. No httpd headers:
 * the module starts the workers in each child; unit tests run a pass by
 * hand. Messages go through cfg->log (us_log.h), numbered 10xx.
 *
 * Per raw upload of a claimed session, API.md's rules: NAME.meta.json
 * sidecar -> metadata (FAILED_TO_PARSE_META unless a JSON object), empty ->
 * EMPTY_FILE, write_mode KEEP / OVERWRITE / FAIL (FILE_ALREADY_EXISTS), the
 * blob published as the workspace file <file_id> (us_storage.h). Decisions are applied in
 * batches, one transaction each; a batch replayed after a crash changes
 * nothing twice (the upload's PENDING state guards it, file ids are the
 * uploads' file_ingestion_id, a blob already moved is recognised).
 */
#ifndef US_INGEST_H
#define US_INGEST_H

#include <apr_pools.h>
#include <apr_time.h>

#include "us_log.h"
#include "us_metrics.h"
#include "us_storage.h"
#include "us_store.h"

/* The largest metadata object a file can carry: a sidecar, or all the
 * `meta` parts of one POST /files together. */
#define US_META_MAX_BYTES (1024 * 1024)

/* The write modes a session or a POST /files takes (NULL-terminated);
 * the first, KEEP, is the default. */
extern const char *const us_write_modes[];

typedef struct {
    const us_store_cfg *store;   /* the store the workers connect to */
    us_storage *storage;         /* where the uploads and workspace files are */
    int threads;                 /* workers in this process */
    int batch;                   /* files per transaction */
    apr_interval_time_t poll;    /* idle wait between claims, unless poked (us_ingest_poke) */
    apr_interval_time_t lease;   /* a claim without heartbeat for this long is stale */
    const char *host;            /* owner ids: host/pid/worker */
    const us_logger *log;        /* may be NULL */
    us_metrics_slot *metrics;    /* counts the files decided, the rounds a store failure
                                  * ended and the claims lost; may be NULL */
    long long max_files;         /* UploadSessionMaxFilesPerSession; 0: unlimited */
    long long max_file_size;     /* UploadSessionMaxFileSize; sizes the late clear's grace */
    /* the files sweep's grace (us_files_sweep.h); 0: US_FILES_SWEEP_LEASES leases
     * and the largest file's upload time (as in us_ingest_late_grace) */
    apr_interval_time_t files_grace;
    /* publishes of one batch run at once, each on a thread of its own
     * (us_fanout); 0: us_storage_publish_width of the storage, 1: in the
     * worker's thread, one after the other */
    int publish_width;
    /* the clock a claim, its lease renewals and a batch's times are read
     * from; NULL: apr_time_now (a test steps it through a long batch) */
    apr_time_t (*clock)(void *clock_arg);
    void *clock_arg;
    /* the wait after a file's first refusal by the storage, doubled per
     * refusal (US_INGEST_FILE_REFUSED); 0: US_INGEST_REFUSAL_PAUSE */
    apr_interval_time_t refusal_pause;
} us_ingest_config;

/* What a listing left out, by cause. */
typedef struct {
    long long over;     /* raw files past max_files */
    long long sidecars; /* sidecars whose raw file is not kept (max_files > 0) */
    long long unnamed;  /* no valid file name, or an earlier key's */
    long long late;     /* written after written_by */
} us_listing_left_out;

/* How long after its close an object may be dated and still be the
 * session's: the object store's clock against the node's. */
#define US_DIRECT_CLOCK_SKEW apr_time_from_sec(5)

/* The last time an object of direct session s may be dated (its close and
 * the skew), for us_ingest_listing's written_by; 0 while it is open. */
apr_time_t us_direct_written_by(const us_session *s);

/* A direct-upload session's objects as its uploads would be recorded
 * (us_listed_object, by name; ids from us_uuid_of_name of the key,
 * uploaded_at = now). Left out, and counted in *left (may be NULL):
 * objects written after written_by (> 0: the close, and a skew), raw files
 * past max_files (> 0) in key order, with max_files > 0 the sidecars whose
 * raw file is not kept (past max_files, or absent: at most max_files
 * sidecars then), objects whose key gives no valid file name or the name
 * of an object before them in key order. The storage's status on failure. */
apr_status_t us_ingest_listing(us_storage *st, apr_pool_t *p, const char *session_id,
                               long long max_files, apr_time_t written_by, apr_time_t now,
                               apr_array_header_t **objects, us_listing_left_out *left);

/* One page of such a listing as GET .../files shows it before the listing
 * is recorded: its raw files (us_session_file_row, PENDING), by name;
 * status as us_session_files_list takes it, pg, *total and *has_more as
 * us_session_files_list gives them. */
void us_ingest_listing_page(apr_pool_t *p, const apr_array_header_t *objects, const char *status,
                            const us_page *pg, apr_array_header_t **rows, long long *total,
                            int *has_more);

typedef struct us_ingester us_ingester;

/* Starts cfg->threads workers; each has its own pool and connection. */
apr_status_t us_ingest_start(apr_pool_t *p, const us_ingest_config *cfg, us_ingester **out);

/* Tells this process's workers that a session may be claimable now (a close
 * committed): an idle worker claims at once instead of at its next poll
 * (cfg->poll stays the fallback: other processes, lapsed leases). Never
 * waits on a worker: one atomic read when pokes are pending already,
 * otherwise a count and at most one signal. A poke while no worker is idle
 * is kept for the next nap; at most one per worker is kept. NULL or no
 * workers: nothing. Safe from any thread while the ingester runs. */
void us_ingest_poke(us_ingester *ing);

/* How long after a claim that found nothing a worker ignores pokes, after
 * `fruitless` pokes in a row found nothing (a close without files queues
 * nothing): 0 for none, US_INGEST_POKE_GAP, doubled each time, at most
 * poll - so a stream of empty closes costs no more claims than polling. */
#define US_INGEST_POKE_GAP apr_time_from_msec(10)
apr_interval_time_t us_ingest_poke_gap(int fruitless, apr_interval_time_t poll);

/* Asks the workers to stop, without waiting: a process stopping several
 * sets of workers asks them all first, so they end together. */
void us_ingest_stop_soon(us_ingester *ing);
/* us_ingest_stop_soon, then waits for them; a session being ingested is
 * handed back to the queue at a batch boundary, or in the middle of the
 * read that counts a text file's characters (its batch left to a replay). */
void us_ingest_stop(us_ingester *ing);

/* Claims one session and ingests it completely (or until *stop, read with
 * apr_atomic_read32, is set).
 * Returns the number of files decided, 0 when there was nothing to claim
 * (or the session had no files left), -1 on a store error, US_INGEST_STORAGE_DOWN
 * when the file storage did not answer, US_INGEST_CLAIM_LOST or
 * US_INGEST_CUT_SHORT (the session is requeued in these cases, but for a
 * lost claim, which its new owner holds, and after the refusal delay below
 * when a file was refused earlier in the round; files decided before the
 * failure are returned instead). A round a store error
 * ended counts in cfg->metrics' worker_store_errors, a claim lost in its
 * ingest_claims_lost, whatever the return. Files the
 * storage refused with tries left stay PENDING while the others are
 * decided; the session is then requeued to be claimed again after their
 * delay (us_ingest_requeue_later), its uploads kept. *claimed (may be
 * NULL) tells whether a session was taken: a worker then looks again at
 * once instead of napping, even when that session was empty. */
#define US_INGEST_STORAGE_DOWN (-2)
/* The storage answered a file's publish, the read of its sidecar or the
 * read that counts its characters with a refusal of that one object
 * (us_storage_refused, e.g. an s3 400 InvalidRequest): the refusal is
 * counted on the file's row, the file stays PENDING while the rest of the
 * batch is applied, and the session is taken again after a delay: the
 * refusal pause (US_INGEST_REFUSAL_PAUSE), doubled per refusal counted
 * before (1, 2, 4, 8 s), the longest of its files'. The round that counts
 * the US_INGEST_PUBLISH_TRIES-th refusal makes the file FAILED with
 * UNKNOWN_ERROR (FAILED at once, the session's clear could remove bytes a
 * retry might still ingest). A round that meets an outage counts against
 * no file. Internal to the ingestion: us_ingest_once does not return it. */
#define US_INGEST_FILE_REFUSED (-3)
/* The round's claim is gone: another worker took the session over once
 * this one's lease lapsed (US1008, counted in ingest_claims_lost_total; the
 * new owner ingests what this round did not apply), or the session was
 * aborted with its workspace (US1035). Nothing failed here. */
#define US_INGEST_CLAIM_LOST (-5)
/* A round ended before its batch was applied with nothing failed in the
 * store: the worker was asked to stop (a publish cut short, US1220). The
 * batch is left to a replay. (A batch whose publishing threads cannot
 * start, US1240, publishes in the worker's thread instead.) */
#define US_INGEST_CUT_SHORT (-6)
#define US_INGEST_PUBLISH_TRIES 5
#define US_INGEST_REFUSAL_PAUSE apr_time_from_sec(1)

/* How long a worker waits before its next try after `failures` tries in a
 * row ended in a storage outage (1..): 1 s, doubled each time, at most
 * US_INGEST_RETRY_MAX. */
#define US_INGEST_RETRY_MAX apr_time_from_sec(30)
apr_interval_time_t us_ingest_retry_delay(int failures);

long us_ingest_once(us_db *db, apr_pool_t *p, const us_ingest_config *cfg, const char *owner,
                    volatile apr_uint32_t *stop, int *claimed);

/* Deletes the bytes of files in the store's file trash (deleted rows whose
 * bytes a crash or a failed removal left) and takes them out of it;
 * returns how many. Idempotent; safe against a delete doing the same. A
 * set *stop (may be NULL) cuts the deletes short, as does the storage not
 * answering: what is left stays in the trash for a later call. */
int us_ingest_sweep_trash(us_db *db, apr_pool_t *p, const us_ingest_config *cfg,
                          volatile apr_uint32_t *stop);

/* Hands claims of dead processes on this host back to the queue. */
void us_ingest_reclaim_dead(us_db *db, apr_pool_t *p, const us_ingest_config *cfg);

/* The slowest upload the late clear waits for, in bytes per second: a POST
 * of the largest file begun just before expires_at lands within
 * us_ingest_late_grace. */
#define US_LATE_CLEAR_MIN_RATE (1024 * 1024)

/* How long after expires_at a session's uploads get their last clear:
 * cfg->lease + cfg->max_file_size at US_LATE_CLEAR_MIN_RATE (5 GiB: 1 h 26
 * min after a 60 s lease). */
apr_interval_time_t us_ingest_late_grace(const us_ingest_config *cfg);

/* The last clear of every session's uploads (docs/design-s3-listing.md):
 * a direct session's POST policy lives until expires_at, so an object may
 * land under its prefix after the clear that ends its ingestion; an upload
 * through the module's target may still stream then, and its writer may
 * be killed between committing the file and removing it (or before
 * recording it in a session that is done at its close, no file recorded),
 * or in the middle of a multipart upload (us_storage_session_clear_late
 * aborts those). Once
 * expires_at lies us_ingest_late_grace in the past (an upload whose policy
 * was checked just before has that long to land) and the ingestion has ended,
 * the due sessions (us_late_clear_due, a page at a time, pages while more
 * may follow for up to US_LATE_CLEAR_BUDGET) are cleared once more and
 * that is recorded: what the storage holds is listed once per call
 * (us_storage_sessions_holding: two listings, whatever the number of
 * sessions), a due session it holds nothing of is recorded with the rest
 * of its page in one write (us_late_clear_done_all, logged as 1121 with
 * their number), one it holds something of is cleared
 * (us_storage_session_clear_late) and recorded alone (us_late_clear_done),
 * logged as 1022 by the one caller that records it. A session that keeps
 * objects (the storage did not answer) stays due. Without the listing
 * (s3 failing it) every due session is cleared alone. Returns how
 * many this call recorded. A clear twice over (two processes at once)
 * removes nothing more and records nothing twice: harmless.
 * at (the caller's, zeroed at first) is where the next call's page starts:
 * after this call's last session tried, or at the first once a page comes
 * back short; so every due session is tried within a few calls, however
 * many before it keep failing. */
#define US_LATE_CLEAR_PAGE 128
#define US_LATE_CLEAR_BUDGET apr_time_from_sec(1)
typedef struct {
    char id[64];
    apr_time_t expires_at;
} us_late_cursor;
int us_ingest_clear_late(us_db *db, apr_pool_t *p, const us_ingest_config *cfg,
                         us_late_cursor *at);

#endif
