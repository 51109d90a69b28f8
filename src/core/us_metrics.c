/*
 * us_metrics.c - the shared counters (us_metrics.h): the block's layout,
 * atomic updates per slot, the histogram buckets and the sum of the slots.
 * The pages that show them are in us_metrics_text.c.
 */
#include "us_metrics.h"

#include <apr_atomic.h>
#include <stdint.h>
#include <string.h>

static const char *const ENDPOINTS[US_EP__COUNT] = {
    [US_EP_SESSION_CREATE] = "session_create",
    [US_EP_SESSION_LIST] = "session_list",
    [US_EP_SESSION_GET] = "session_get",
    [US_EP_SESSION_CLOSE] = "session_close",
    [US_EP_SESSION_FILES] = "session_files",
    [US_EP_FILE_LIST] = "file_list",
    [US_EP_FILE_GET] = "file_get",
    [US_EP_FILE_META] = "file_meta",
    [US_EP_FILE_POST] = "file_post",
    [US_EP_UPLOAD] = "upload",
    [US_EP_HEALTH] = "health",
    [US_EP_SESSION_ABORT] = "session_abort",
    [US_EP_FILE_DELETE] = "file_delete",
    [US_EP_FILES_DELETE] = "files_delete",
    [US_EP_FILES_UPDATE_META] = "files_update_meta",
    [US_EP_WORKSPACE] = "workspace",
    [US_EP_OTHER] = "other",
};

const char *us_endpoint_name(us_endpoint e)
{
    return e >= 0 && e < US_EP__COUNT ? ENDPOINTS[e] : ENDPOINTS[US_EP_OTHER];
}

static const char *const REASONS[US_OUTCOME__COUNT] = {
    [US_OUTCOME_FINISHED] = "",
    [US_OUTCOME_EMPTY_FILE] = "EMPTY_FILE",
    [US_OUTCOME_FAILED_TO_PARSE_META] = "FAILED_TO_PARSE_META",
    [US_OUTCOME_FILE_ALREADY_EXISTS] = "FILE_ALREADY_EXISTS",
    [US_OUTCOME_FILE_NOT_FOUND] = "FILE_NOT_FOUND",
    [US_OUTCOME_UNKNOWN_ERROR] = "UNKNOWN_ERROR",
    [US_OUTCOME_FAILED_OTHER] = "OTHER",
};

us_outcome us_outcome_of(const char *status, const char *reason)
{
    if (status && strcmp(status, "FINISHED") == 0)
        return US_OUTCOME_FINISHED;
    for (int o = US_OUTCOME_EMPTY_FILE; reason && o < US_OUTCOME_FAILED_OTHER; o++)
        if (strcmp(reason, REASONS[o]) == 0)
            return (us_outcome)o;
    return US_OUTCOME_FAILED_OTHER;
}

const char *us_outcome_status(us_outcome o)
{
    return o == US_OUTCOME_FINISHED ? "FINISHED" : "FAILED";
}

const char *us_outcome_reason(us_outcome o)
{
    return o >= 0 && o < US_OUTCOME__COUNT ? REASONS[o] : REASONS[US_OUTCOME_FAILED_OTHER];
}

static const apr_interval_time_t BOUNDS[US_HIST_BOUNDS] = {
    1000, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
    1000000, 2500000, 5000000, 10000000,
};
static const char *const LABELS[US_HIST_BUCKETS] = {
    "0.001", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5",
    "1", "2.5", "5", "10", "+Inf",
};

int us_hist_bucket(apr_interval_time_t d)
{
    int i = 0;
    while (i < US_HIST_BOUNDS && d > BOUNDS[i])
        i++;
    return i;
}

apr_interval_time_t us_hist_bound(int i)
{
    return i >= 0 && i < US_HIST_BOUNDS ? BOUNDS[i] : -1;
}

const char *us_hist_label(int i)
{
    return i >= 0 && i < US_HIST_BUCKETS ? LABELS[i] : LABELS[US_HIST_BOUNDS];
}

/* ---- the block ------------------------------------------------------------- */

/* Changes whenever the layout does: a block from a build with another
 * layout (a restart that loaded a new module) is started afresh. */
#define US_METRICS_MAGIC 0x55534d34u /* "USM4" */

struct us_metrics_slot {
    _Alignas(64) us_metrics_counts c; /* a cache line of its own per slot */
};

struct us_metrics_gauges {
    _Alignas(64) apr_uint32_t pid; /* its process; 0: free */
    apr_uint64_t uploads_active;
    apr_uint64_t upload_bytes_active;
};

struct us_metrics {
    apr_uint32_t magic;
    apr_uint32_t size;
    apr_time_t since;
    us_metrics_slot slots[US_METRICS_SLOTS];
    us_metrics_gauges procs[US_METRICS_PROCS];
};

/* Room for the block at the first address in it aligned for the slots:
 * shared memory and pools give 8 or 16 bytes of alignment, not a cache line. */
apr_size_t us_metrics_size(void)
{
    return sizeof(us_metrics) + _Alignof(us_metrics) - 1;
}

us_metrics *us_metrics_attach(void *mem, apr_time_t now)
{
    const uintptr_t align = _Alignof(us_metrics);
    us_metrics *m = (us_metrics *)(((uintptr_t)mem + align - 1) & ~(align - 1));
    if (m->magic == US_METRICS_MAGIC && m->size == (apr_uint32_t)sizeof(*m))
        return m;
    memset(m, 0, sizeof(*m));
    m->size = (apr_uint32_t)sizeof(*m);
    m->since = now;
    m->magic = US_METRICS_MAGIC;
    return m;
}

apr_time_t us_metrics_since(const us_metrics *m)
{
    return m ? m->since : 0;
}

us_metrics_slot *us_metrics_slot_for(us_metrics *m, long pid)
{
    if (!m)
        return NULL;
    return &m->slots[(unsigned long)(pid < 0 ? -pid : pid) % US_METRICS_SLOTS];
}

static apr_uint32_t pid_key(long pid)
{
    return (apr_uint32_t)(pid < 0 ? -pid : pid);
}

static void gauges_zero(us_metrics_gauges *g)
{
    apr_atomic_set64(&g->uploads_active, 0);
    apr_atomic_set64(&g->upload_bytes_active, 0);
}

us_metrics_gauges *us_metrics_gauges_claim(us_metrics *m, long pid)
{
    apr_uint32_t key = pid_key(pid);
    if (!m || key == 0)
        return NULL;
    /* a record still holding this pid is a dead process's whose release
     * never came: the pid is ours now */
    for (int i = 0; i < US_METRICS_PROCS; i++)
        if (apr_atomic_read32(&m->procs[i].pid) == key) {
            gauges_zero(&m->procs[i]);
            return &m->procs[i];
        }
    /* a free record's gauges are zero: a release zeroes them before it frees */
    for (int i = 0; i < US_METRICS_PROCS; i++)
        if (apr_atomic_cas32(&m->procs[i].pid, key, 0) == 0)
            return &m->procs[i];
    return NULL;
}

void us_metrics_gauges_release(us_metrics *m, long pid)
{
    apr_uint32_t key = pid_key(pid);
    if (!m || key == 0)
        return;
    for (int i = 0; i < US_METRICS_PROCS; i++)
        if (apr_atomic_read32(&m->procs[i].pid) == key) {
            gauges_zero(&m->procs[i]);
            apr_atomic_set32(&m->procs[i].pid, 0);
        }
}

void us_metrics_upload_started(us_metrics_gauges *g)
{
    if (g)
        apr_atomic_inc64(&g->uploads_active);
}

void us_metrics_upload_bytes(us_metrics_gauges *g, apr_uint64_t n)
{
    if (g)
        apr_atomic_add64(&g->upload_bytes_active, n);
}

void us_metrics_upload_ended(us_metrics_slot *s, us_metrics_gauges *g, apr_uint64_t received,
                             int recorded)
{
    if (g) {
        /* subtracting is adding the two's complement */
        apr_atomic_add64(&g->upload_bytes_active, (apr_uint64_t)0 - received);
        apr_atomic_dec64(&g->uploads_active);
    }
    if (!s)
        return;
    if (recorded) {
        apr_atomic_inc64(&s->c.uploads);
        apr_atomic_add64(&s->c.upload_bytes, received);
    }
}

void us_metrics_store_error(us_metrics_slot *s)
{
    if (s)
        apr_atomic_inc64(&s->c.store_errors);
}

void us_metrics_worker_store_error(us_metrics_slot *s)
{
    if (s)
        apr_atomic_inc64(&s->c.worker_store_errors);
}

void us_metrics_ingest_claim_lost(us_metrics_slot *s)
{
    if (s)
        apr_atomic_inc64(&s->c.ingest_claims_lost);
}

void us_metrics_file(us_metrics_slot *s, us_outcome o)
{
    if (s && o >= 0 && o < US_OUTCOME__COUNT)
        apr_atomic_inc64(&s->c.files[o]);
}

void us_metrics_request(us_metrics_slot *s, us_endpoint e, apr_interval_time_t d)
{
    if (!s)
        return;
    if (e < 0 || e >= US_EP__COUNT)
        e = US_EP_OTHER;
    if (d < 0)
        d = 0;
    apr_atomic_inc64(&s->c.requests[e][us_hist_bucket(d)]);
    apr_atomic_add64(&s->c.request_us[e], (apr_uint64_t)d);
}

/* Reads every counter of a us_metrics_counts as an array of apr_uint64_t. */
#define COUNTERS (sizeof(us_metrics_counts) / sizeof(apr_uint64_t))

void us_metrics_sum(const us_metrics *m, us_metrics_counts *out)
{
    apr_uint64_t *sum = (apr_uint64_t *)out;
    memset(out, 0, sizeof(*out));
    if (!m)
        return;
    for (int i = 0; i < US_METRICS_SLOTS; i++) {
        /* apr_atomic_read64 takes a non-const pointer: it only reads */
        apr_uint64_t *c = (apr_uint64_t *)&((us_metrics *)m)->slots[i].c;
        for (apr_size_t k = 0; k < COUNTERS; k++)
            sum[k] += apr_atomic_read64(&c[k]);
    }
    for (int i = 0; i < US_METRICS_PROCS; i++) {
        us_metrics_gauges *g = &((us_metrics *)m)->procs[i];
        out->uploads_active += apr_atomic_read64(&g->uploads_active);
        out->upload_bytes_active += apr_atomic_read64(&g->upload_bytes_active);
    }
}
