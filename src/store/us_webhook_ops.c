/*
 * us_webhook_ops.c - the webhook outbox and the node registry of
 * us_store.h, written once over the backends' generic entries.
 */
#include "us_ops.h"

#include <apr_strings.h>
#include <string.h>

typedef struct {
    const apr_array_header_t *urls;
    apr_array_header_t *dropped; /* us_webhook_dropped; NULL: not asked */
} targets_args;

static void row_to_dropped(const us_row *r, apr_pool_t *p, void *out)
{
    us_webhook_dropped *d = apr_array_push(out);
    d->url = us_row_str(r, p, 0);
    d->pending = us_row_ll(r, 1);
}

/* Drops the listed URLs that urls does not hold, then adds the new ones: a
 * URL kept keeps its row, and with it its circuit breaker. Where events are
 * written concurrently (PostgreSQL) a dropped URL's events in flight are
 * waited for first, so its rows are all there to drop; its rows are then
 * locked before its row: a settle or a claim holds a row, then waits for
 * its URL's. */
static us_db_rc targets_body(us_db *db, apr_pool_t *p, void *arg)
{
    targets_args *a = arg;
    int nrows = 0;
    apr_array_header_t *had = apr_array_make(p, 4, sizeof(const char *));
    us_db_rc rc = us_select(db, p, US_STMT_WEBHOOK_TARGETS_LIST, NULL, us_push_str, had, &nrows);
    for (int i = 0; rc == US_DB_OK && i < had->nelts; i++) {
        const char *url = APR_ARRAY_IDX(had, i, const char *);
        int listed = 0;
        for (int j = 0; !listed && a->urls && j < a->urls->nelts; j++)
            listed = strcmp(url, APR_ARRAY_IDX(a->urls, j, const char *)) == 0;
        const void *args[] = { url };
        if (!listed && us_has_stmt(db->backend, US_STMT_WEBHOOK_URL_DROP_LOCK))
            rc = us_select(db, p, US_STMT_WEBHOOK_URL_DROP_LOCK, args, NULL, NULL, &nrows);
        if (!listed && rc == US_DB_OK && us_has_stmt(db->backend, US_STMT_WEBHOOK_URL_ROWS_LOCK))
            rc = us_select(db, p, US_STMT_WEBHOOK_URL_ROWS_LOCK, args, NULL, NULL, &nrows);
        if (!listed && rc == US_DB_OK)
            rc = us_exec(db, p, US_STMT_WEBHOOK_TARGET_DROP, args, &nrows);
    }
    for (int i = 0; rc == US_DB_OK && a->urls && i < a->urls->nelts; i++) {
        const void *args[] = { APR_ARRAY_IDX(a->urls, i, const char *) };
        rc = us_exec(db, p, US_STMT_WEBHOOK_TARGET_ADD, args, &nrows);
    }
    if (rc == US_DB_OK && a->dropped) {
        a->dropped->nelts = 0; /* a retried transaction counts afresh */
        rc = us_select(db, p, US_STMT_WEBHOOK_UNLISTED_PENDING, NULL, row_to_dropped, a->dropped,
                       &nrows);
    }
    return rc == US_DB_OK ? us_exec(db, p, US_STMT_WEBHOOK_DROP_UNLISTED, NULL, &nrows) : rc;
}

us_db_rc us_webhook_targets_set(us_db *db, apr_pool_t *p, const apr_array_header_t *urls)
{
    targets_args a = { urls, NULL };
    return us_write_txn(db, p, targets_body, &a);
}

us_db_rc us_webhook_targets_replace(us_db *db, apr_pool_t *p, const apr_array_header_t *urls,
                                    apr_array_header_t **dropped)
{
    targets_args a = { urls, apr_array_make(p, 1, sizeof(us_webhook_dropped)) };
    us_db_rc rc = us_write_txn(db, p, targets_body, &a);
    *dropped = a.dropped;
    return rc;
}

/* Column order of WEBHOOK_COLS in the dialects' SQL */
static void row_to_webhook(const us_row *r, apr_pool_t *p, void *out)
{
    us_webhook_row *w = out;
    w->id = us_row_ll(r, 0);
    w->event = us_row_str(r, p, 1);
    w->session_id = us_row_str(r, p, 2);
    w->workspace = us_row_str(r, p, 3);
    w->url = us_row_str(r, p, 4);
    w->occurred_at = (apr_time_t)us_row_ll(r, 5);
    w->uploaded_files = us_row_ll(r, 6);
    w->finished_files = us_row_ll(r, 7);
    w->failed_files = us_row_ll(r, 8);
    w->page = (int)us_row_ll(r, 9);
    w->attempts = (int)us_row_ll(r, 10);
    w->url_failures = (int)us_row_ll(r, 11);
}

typedef struct {
    const char *owner;
    apr_int64_t id, now, until;
    us_webhook_row *out;
} webhook_claim_args;

static us_db_rc lease_body(us_db *db, apr_pool_t *p, void *arg)
{
    webhook_claim_args *a = arg;
    int nrows = 0;
    const void *args[] = { a->owner, &a->until, &a->id, &a->now, &a->now, &a->now };
    us_db_rc rc = us_exec(db, p, US_STMT_WEBHOOK_LEASE, args, &nrows);
    if (rc != US_DB_OK)
        return rc;
    if (nrows == 0)
        return US_DB_NOTFOUND; /* another deliverer was quicker, or the URL got paused */
    const void *pargs[] = { &a->until, &a->id };
    if ((rc = us_exec(db, p, US_STMT_WEBHOOK_PROBE, pargs, &nrows)) != US_DB_OK)
        return rc;
    const void *gargs[] = { &a->id };
    return us_select_one(db, p, US_STMT_WEBHOOK_GET, gargs, row_to_webhook, a->out);
}

us_db_rc us_webhook_claim(us_db *db, apr_pool_t *p, const char *owner, apr_time_t now,
                          apr_time_t lease_until, us_webhook_row *out)
{
    memset(out, 0, sizeof(*out));
    webhook_claim_args a = { owner, 0, now, lease_until, out };
    if (us_has_stmt(db->backend, US_STMT_WEBHOOK_CLAIM)) {
        /* one statement (an update answering the leased row): its own
         * transaction; only a dialect without a writer queue maps it, and
         * it leases by the database's clock: the lease's length */
        apr_int64_t lease = lease_until - now;
        const void *args[] = { owner, &lease, &a.now, &a.now, &a.now };
        return us_select_one(db, p, US_STMT_WEBHOOK_CLAIM, args, row_to_webhook, out);
    }
    /* search by a read, outside any write: an idle outbox costs no write */
    const void *args[] = { &a.now, &a.now, &a.now };
    us_db_rc rc = us_select_one(db, p, US_STMT_WEBHOOK_CANDIDATE, args, us_row_to_ll, &a.id);
    if (rc != US_DB_OK)
        return rc;
    return us_write_txn(db, p, lease_body, &a);
}

/* A settle of row id by its owner: the row's statement, then its URL's
 * circuit breaker (the row first, then the URL, in every settle, and the
 * URL after the row in the PostgreSQL claim: no two transactions wait for
 * each other's). */
typedef struct {
    apr_int64_t id;
    const char *owner;
    int page, pages;                /* us_webhook_delivered */
    const us_webhook_failure *f;    /* us_webhook_retry */
    us_webhook_paused *url;         /* us_webhook_retry: as the failure left it */
} settle_args;

typedef struct {
    const char *url;
    apr_int64_t lease_until;
} leased_row;

static void row_to_leased(const us_row *r, apr_pool_t *p, void *out)
{
    leased_row *l = out;
    l->url = us_row_str(r, p, 0);
    l->lease_until = us_row_ll(r, 1);
}

/* The row as owner leased it; NOTFOUND when owner lost the lease (the
 * settle is then a no-op). */
static us_db_rc leased(us_db *db, apr_pool_t *p, const settle_args *a, leased_row *l)
{
    const void *args[] = { &a->id, a->owner };
    return us_select_one(db, p, US_STMT_WEBHOOK_LEASED, args, row_to_leased, l);
}

/* A probe's pause (its lease's end) ends with it. */
static us_db_rc unpause(us_db *db, apr_pool_t *p, const leased_row *l)
{
    int nrows = 0;
    const void *args[] = { l->url, &l->lease_until };
    return us_exec(db, p, US_STMT_WEBHOOK_URL_UNPAUSE, args, &nrows);
}

/* Runs stmt with args on the row as owner leased it (*l: its URL and
 * lease): NOTFOUND when owner lost the lease or stmt changed nothing (the
 * row past that page, settled before), and the settle does no more. */
static us_db_rc settle_row(us_db *db, apr_pool_t *p, const settle_args *a, us_stmt_id stmt,
                           const void **args, leased_row *l)
{
    int nrows = 0;
    us_db_rc rc = leased(db, p, a, l);
    if (rc == US_DB_OK && (rc = us_exec(db, p, stmt, args, &nrows)) == US_DB_OK && nrows == 0)
        rc = US_DB_NOTFOUND;
    return rc;
}

static us_db_rc delivered_body(us_db *db, apr_pool_t *p, void *arg)
{
    settle_args *a = arg;
    leased_row l;
    int nrows = 0;
    const void *args[] = { &a->id, a->owner, &a->page };
    us_db_rc rc = settle_row(db, p, a,
                             a->page < a->pages ? US_STMT_WEBHOOK_NEXT_PAGE : US_STMT_WEBHOOK_DONE,
                             args, &l);
    if (rc != US_DB_OK)
        return rc == US_DB_NOTFOUND ? US_DB_OK : rc;
    const void *uargs[] = { l.url };
    return us_exec(db, p, US_STMT_WEBHOOK_URL_CLEAR, uargs, &nrows);
}

us_db_rc us_webhook_delivered(us_db *db, apr_pool_t *p, long long id, const char *owner, int page,
                              int pages)
{
    settle_args a = { id, owner, page, pages, NULL, NULL };
    return us_write_txn(db, p, delivered_body, &a);
}

/* How many doublings of the first pause reach the longest: from that
 * count of failures before one on, the pause is the longest. */
static int pause_doublings(apr_int64_t first, apr_int64_t longest)
{
    int n = 0;
    while (n < 40 && first > 0 && first <= (longest - 1) >> n) /* first << n < longest */
        n++;
    return n;
}

static void row_to_url_state(const us_row *r, apr_pool_t *p, void *out)
{
    us_webhook_paused *u = out;
    (void)p;
    u->failures = (int)us_row_ll(r, 0);
    u->paused_until = (apr_time_t)us_row_ll(r, 1);
}

static us_db_rc retry_body(us_db *db, apr_pool_t *p, void *arg)
{
    settle_args *a = arg;
    memset(a->url, 0, sizeof(*a->url)); /* a retried transaction reads afresh */
    const us_webhook_failure *f = a->f;
    leased_row l;
    int nrows = 0;
    apr_int64_t t = f->now, next = f->next_at, stale = f->stale_before;
    apr_int64_t first = f->pause, longest = f->pause_max;
    const char *error = f->error ? f->error : "";
    const void *args[] = { &next, error, &t, f->give_up ? "failed" : "pending", &a->id,
                           a->owner };
    us_db_rc rc = settle_row(db, p, a, US_STMT_WEBHOOK_RETRY, args, &l);
    if (rc != US_DB_OK)
        return rc == US_DB_NOTFOUND ? US_DB_OK : rc;
    if (!f->pause)
        return unpause(db, p, &l); /* not the receiver's failure */
    if (f->stale_before) {
        const void *sargs[] = { error, &t, l.url, &a->id, &stale, &t };
        if ((rc = us_exec(db, p, US_STMT_WEBHOOK_URL_STALE, sargs, &nrows)) != US_DB_OK)
            return rc;
    }
    int doublings = pause_doublings(first, longest);
    const void *uargs[] = { &l.lease_until, &t, &doublings, &longest, &first,
                            &t, &doublings, &longest, &first, l.url };
    if ((rc = us_exec(db, p, US_STMT_WEBHOOK_URL_FAILED, uargs, &nrows)) != US_DB_OK)
        return rc;
    const void *sargs[] = { l.url };
    rc = us_select_one(db, p, US_STMT_WEBHOOK_URL_STATE, sargs, row_to_url_state, a->url);
    if (rc == US_DB_OK)
        a->url->url = l.url;
    return rc == US_DB_NOTFOUND ? US_DB_OK : rc; /* no longer listed: no breaker */
}

us_db_rc us_webhook_retry(us_db *db, apr_pool_t *p, long long id, const char *owner,
                          const us_webhook_failure *f, us_webhook_paused *url)
{
    us_webhook_paused ignored;
    settle_args a = { id, owner, 0, 0, f, url ? url : &ignored };
    return us_write_txn(db, p, retry_body, &a);
}

static us_db_rc release_body(us_db *db, apr_pool_t *p, void *arg)
{
    settle_args *a = arg;
    leased_row l;
    const void *args[] = { &a->id, a->owner };
    us_db_rc rc = settle_row(db, p, a, US_STMT_WEBHOOK_RELEASE, args, &l);
    if (rc != US_DB_OK)
        return rc == US_DB_NOTFOUND ? US_DB_OK : rc;
    return unpause(db, p, &l);
}

us_db_rc us_webhook_release(us_db *db, apr_pool_t *p, long long id, const char *owner)
{
    settle_args a = { id, owner, 0, 0, NULL, NULL };
    return us_write_txn(db, p, release_body, &a);
}

static void row_to_webhook_stats(const us_row *r, apr_pool_t *p, void *out)
{
    us_webhook_stats *st = out;
    st->pending = us_row_ll(r, 0);
    st->failed = us_row_ll(r, 1);
    st->oldest_pending = (apr_time_t)us_row_ll(r, 2);
    st->last_error = us_row_null(r, p, 3);
    st->last_error_at = (apr_time_t)us_row_ll(r, 4);
}

us_db_rc us_webhook_stats_read(us_db *db, apr_pool_t *p, us_webhook_stats *out)
{
    memset(out, 0, sizeof(*out));
    return us_select_one(db, p, US_STMT_WEBHOOK_STATS, NULL, row_to_webhook_stats, out);
}

static void row_to_webhook_paused(const us_row *r, apr_pool_t *p, void *out)
{
    us_webhook_paused *w = apr_array_push(out);
    w->url = us_row_str(r, p, 0);
    w->failures = (int)us_row_ll(r, 1);
    w->paused_until = (apr_time_t)us_row_ll(r, 2);
}

us_db_rc us_webhook_paused_read(us_db *db, apr_pool_t *p, apr_time_t now,
                                apr_array_header_t **rows)
{
    apr_int64_t n = now;
    const void *args[] = { &n };
    *rows = apr_array_make(p, 2, sizeof(us_webhook_paused));
    return us_select(db, p, US_STMT_WEBHOOK_PAUSED, args, row_to_webhook_paused, *rows, NULL);
}

us_db_rc us_webhook_forget_failed(us_db *db, apr_pool_t *p, apr_time_t before, int limit,
                                  int *n)
{
    apr_int64_t b = before;
    const void *args[] = { &b, &limit };
    *n = 0;
    return us_write_one(db, p, US_STMT_WEBHOOK_FORGET_FAILED, args, n);
}

/* ---- node registry ------------------------------------------------------------- */

static void row_to_node(const us_row *r, apr_pool_t *p, void *out)
{
    us_node *holder = out;
    holder->instance = us_row_str(r, p, 0);
    holder->host = us_row_str(r, p, 1);
    holder->pid = us_row_ll(r, 2);
    holder->age = (apr_interval_time_t)us_row_ll(r, 3);
}

us_db_rc us_node_claim(us_db *db, apr_pool_t *p, const us_node *me, const char *replaces,
                       apr_interval_time_t ttl, us_node *holder)
{
    if (!us_has_stmt(db->backend, US_STMT_NODE_CLAIM))
        return US_DB_OK;
    apr_int64_t pid = me->pid, lease = ttl;
    int granted = 0;
    const void *args[] = { me->name, me->instance, me->host, &pid, replaces ? replaces : "",
                           &lease };
    /* one statement (an upsert answering a row when granted): its own
     * transaction; only a dialect without a writer queue maps it */
    us_db_rc rc = us_select(db, p, US_STMT_NODE_CLAIM, args, NULL, NULL, &granted);
    if (rc != US_DB_OK || granted)
        return rc;
    const void *hargs[] = { me->name };
    memset(holder, 0, sizeof(*holder));
    holder->name = apr_pstrdup(p, me->name);
    holder->instance = holder->host = "";
    rc = us_select(db, p, US_STMT_NODE_HOLDER, hargs, row_to_node, holder, NULL);
    return rc == US_DB_OK ? US_DB_CONFLICT : rc;
}

us_db_rc us_node_heartbeat(us_db *db, apr_pool_t *p, const char *name, const char *instance)
{
    if (!us_has_stmt(db->backend, US_STMT_NODE_HEARTBEAT))
        return US_DB_OK;
    int nrows = 0;
    const void *args[] = { name, instance };
    us_db_rc rc = us_write_one(db, p, US_STMT_NODE_HEARTBEAT, args, &nrows);
    return rc == US_DB_OK && nrows == 0 ? US_DB_CONFLICT : rc;
}
