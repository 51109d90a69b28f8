/*
 * us_metrics.h - the module's counters, laid out in one block of memory that
 * every process of the server shares (the httpd glue maps it, an anonymous
 * shared segment created by the parent), and what reads them: the request
 * duration histogram, the Prometheus text exposition (format 0.0.4) and the
 * JSON status document. Pure (APR only): unit tests use plain memory.
 *
 * The block holds a header and US_METRICS_SLOTS slots. A process counts in
 * the slot of its pid (pid modulo the slot count); two processes may share
 * a slot, so every update is an atomic add (apr_atomic_*64) and a reader
 * sums the slots. Counters only grow (modulo 2^64), and a process's counts
 * outlive it. The two gauges of uploads in progress are a process's own
 * instead: each process holds a record of them (US_METRICS_PROCS, claimed
 * by pid), which the parent zeroes and frees when it sees the process gone,
 * so a process killed mid-upload leaves nothing in progress behind.
 */
#ifndef US_METRICS_H
#define US_METRICS_H

#include <apr_pools.h>
#include <apr_tables.h>
#include <apr_time.h>

#include "us_store.h"

/* The API endpoints timed, by name in the exposition ("endpoint" label). */
typedef enum {
    US_EP_SESSION_CREATE = 0,
    US_EP_SESSION_LIST,
    US_EP_SESSION_GET,
    US_EP_SESSION_CLOSE,
    US_EP_SESSION_FILES,
    US_EP_FILE_LIST,
    US_EP_FILE_GET,
    US_EP_FILE_META,
    US_EP_FILE_POST,
    US_EP_UPLOAD,
    US_EP_HEALTH,
    US_EP_SESSION_ABORT,
    US_EP_FILE_DELETE,  /* one file */
    US_EP_FILES_DELETE, /* by names or ids */
    US_EP_FILES_UPDATE_META,
    US_EP_WORKSPACE,    /* the workspaces' routes */
    US_EP_OTHER,        /* unknown paths, refused methods, the OpenAPI document */
    US_EP__COUNT
} us_endpoint;

const char *us_endpoint_name(us_endpoint e);

/* What ingestion decided for a file: FINISHED, or FAILED with its reason
 * (API.md's reasons). */
typedef enum {
    US_OUTCOME_FINISHED = 0,
    US_OUTCOME_EMPTY_FILE,
    US_OUTCOME_FAILED_TO_PARSE_META,
    US_OUTCOME_FILE_ALREADY_EXISTS,
    US_OUTCOME_FILE_NOT_FOUND,
    US_OUTCOME_UNKNOWN_ERROR,  /* e.g. a file the storage refused (us_ingest.h) */
    US_OUTCOME_FAILED_OTHER, /* a FAILED reason this list lacks */
    US_OUTCOME__COUNT
} us_outcome;

/* The outcome of a decision (status "FINISHED" or "FAILED", reason). */
us_outcome us_outcome_of(const char *status, const char *reason);
/* "FINISHED" or "FAILED"; the reason ("" for FINISHED, "OTHER" for
 * US_OUTCOME_FAILED_OTHER). */
const char *us_outcome_status(us_outcome o);
const char *us_outcome_reason(us_outcome o);

/* Request durations: the upper bounds of the buckets in microseconds, then
 * +Inf. Prometheus's default buckets, with 1 ms in front. */
#define US_HIST_BOUNDS 12
#define US_HIST_BUCKETS (US_HIST_BOUNDS + 1)
/* The bucket of a duration: the first whose bound it does not exceed. */
int us_hist_bucket(apr_interval_time_t d);
/* Bound i (i < US_HIST_BOUNDS) in microseconds, and as Prometheus's le label. */
apr_interval_time_t us_hist_bound(int i);
const char *us_hist_label(int i);

/* One slot's counters (and the sum of all slots, us_metrics_sum). */
typedef struct {
    apr_uint64_t uploads;               /* files recorded by the upload target */
    apr_uint64_t upload_bytes;          /* their bytes */
    apr_uint64_t uploads_active;        /* uploads being received (gauge; 0 in a slot) */
    apr_uint64_t upload_bytes_active;   /* bytes received by them so far (gauge; 0 in a slot) */
    apr_uint64_t store_errors;          /* store operations of requests and pages that failed */
    apr_uint64_t worker_store_errors;   /* the ingest and webhook workers': failed connects,
                                         * and rounds a store failure ended */
    apr_uint64_t ingest_claims_lost;    /* ingest claims taken over mid-session (US1008) */
    apr_uint64_t files[US_OUTCOME__COUNT];
    apr_uint64_t requests[US_EP__COUNT][US_HIST_BUCKETS]; /* not cumulative */
    apr_uint64_t request_us[US_EP__COUNT];                /* sum of durations */
} us_metrics_counts;

#define US_METRICS_SLOTS 16
/* processes with a record of gauges at once; one past it counts none */
#define US_METRICS_PROCS 1024

typedef struct us_metrics us_metrics;
typedef struct us_metrics_slot us_metrics_slot;
typedef struct us_metrics_gauges us_metrics_gauges;

/* Bytes a block needs. */
apr_size_t us_metrics_size(void);
/* A block in mem (us_metrics_size() bytes): the one already there when its
 * header matches this build's layout (mem survived a restart), else a new
 * zeroed one whose counting starts at now. */
us_metrics *us_metrics_attach(void *mem, apr_time_t now);
/* When the counting started. */
apr_time_t us_metrics_since(const us_metrics *m);
/* The slot this process (pid) counts in; m may be NULL (NULL then). */
us_metrics_slot *us_metrics_slot_for(us_metrics *m, long pid);
/* The record of process pid's gauges, zeroed: its own (a dead process's
 * of the same pid included), else a free one; NULL when m is NULL or
 * every record is held. */
us_metrics_gauges *us_metrics_gauges_claim(us_metrics *m, long pid);
/* Process pid is gone (its parent reaped it): its record's gauges leave
 * the sums and the record is free. Nothing when it held none. */
void us_metrics_gauges_release(us_metrics *m, long pid);

/* Counting; a NULL slot or record counts nothing. */
void us_metrics_upload_started(us_metrics_gauges *g);
void us_metrics_upload_bytes(us_metrics_gauges *g, apr_uint64_t n);
/* An upload ends: received bytes leave the gauges; recorded: counted in
 * uploads and upload_bytes. */
void us_metrics_upload_ended(us_metrics_slot *s, us_metrics_gauges *g, apr_uint64_t received,
                             int recorded);
void us_metrics_store_error(us_metrics_slot *s);
void us_metrics_worker_store_error(us_metrics_slot *s);
void us_metrics_ingest_claim_lost(us_metrics_slot *s);
void us_metrics_file(us_metrics_slot *s, us_outcome o);
void us_metrics_request(us_metrics_slot *s, us_endpoint e, apr_interval_time_t d);

/* The sum of every slot and record of gauges; each counter read atomically
 * (not one snapshot). */
void us_metrics_sum(const us_metrics *m, us_metrics_counts *out);

/* What the pages show besides the counters. */
typedef struct {
    const char *version;
    apr_time_t now;
    apr_time_t since;                   /* us_metrics_since */
    const us_metrics_counts *counts;
    const us_store_overview *overview;  /* NULL when the store did not answer */
    const char *store_error;            /* NULL when the store answered */
    const char *storage_error;          /* NULL when the file storage can be written */
    const apr_array_header_t *leases;   /* us_claim (owner "host/pid/worker"); may be NULL */
    int webhook_urls;                   /* UploadSessionWebhook URLs; 0: no webhook section */
    const us_webhook_stats *webhooks;   /* the outbox; NULL when the store did not answer */
    const apr_array_header_t *webhook_paused; /* us_webhook_paused: the URLs paused now;
                                               * read with webhooks (NULL with it) */
} us_status_view;

/* The Prometheus text exposition (0.0.4) of v, names prefixed
 * "mod_upload_session_"; NUL-terminated, in p. */
const char *us_metrics_prometheus(apr_pool_t *p, const us_status_view *v);

/* The JSON status document of v (us_json_writer's compact text), in p.
 * Webhook URLs are shown as us_webhook_url_shown writes them, those in the
 * stored last_error too (us_webhook_text_shown). */
const char *us_metrics_status_json(apr_pool_t *p, const us_status_view *v);

/* mod_status's machine-readable lines ("Key: value\n"), in p. */
const char *us_metrics_status_auto(apr_pool_t *p, const us_status_view *v);

#endif
