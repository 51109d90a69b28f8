/*
 * us_pg_sessions.c - the PostgreSQL backend's session creates (one
 * statement each, concurrent creates of a process batched into one call)
 * and the expiry sweep.
 */
#include "us_pg_db.h"
#include "us_pg_sql.h"
#include "../us_ops.h"

#include <apr_strings.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


typedef struct {
    const us_session *s;
    int max_open;
    apr_time_t now;
    apr_time_t created_at, expires_at; /* as stored */
} insert_args;

/* Creates in one statement: us_sessions_create (us_pg_sql.c) takes the
 * locks of a create by statements in their order, then per create the
 * limit check and the rows, and its transaction ends with it - no round
 * trip while the user's counter row is held. Concurrent creates of this
 * process go in one call, one per user and workspace: one round trip and
 * one commit (a WAL flush) for them all; a call that fails leaves each
 * create to run alone, as if it had come by itself. */
#define CREATE_ALONE (-1)
#define CREATE_UNKNOWN (-2) /* its batch's statement lost its connection */

typedef struct {
    us_group_item *item;
} create_slot; /* a batch's create, in the order its statement runs them */

typedef struct {
    const create_slot *slots;
    int n;
} create_batch_args;

/* The columns of us_sessions_create after the workspace and the user. */
enum { CC_ID, CC_GIVEN, CC_FAMILY, CC_MODE, CC_PARALLEL, CC_LIFETIME, CC_DIRECT, CC_MAX,
       CC_NOW, CREATE_COLS };

/* Create a's value in column col; num holds a number's text. */
static const char *create_value(const insert_args *a, int col, char *num, apr_size_t numlen)
{
    const us_session *s = a->s;
    apr_int64_t v;
    switch (col) {
    case CC_ID: return s->id;
    case CC_GIVEN: return s->given_name;
    case CC_FAMILY: return s->family_name;
    case CC_MODE: return s->write_mode;
    case CC_PARALLEL: v = s->parallel; break;
    case CC_LIFETIME: v = s->expires_at - s->created_at; break;
    case CC_DIRECT: v = s->direct; break;
    case CC_MAX: v = a->max_open; break;
    default: v = a->now; break;
    }
    apr_snprintf(num, numlen, "%" APR_INT64_T_FMT, v);
    return num;
}

typedef struct {
    const create_batch_args *b;
    int col;
} create_column_ctx;

static const char *create_column_value(const void *ctx, int i, char *num, apr_size_t numlen)
{
    const create_column_ctx *c = ctx;
    return create_value(c->b->slots[i].item->arg, c->col, num, numlen);
}

/* The batch's column col as an array literal. */
static const char *create_column(apr_pool_t *p, const create_batch_args *b, int col)
{
    create_column_ctx c = { b, col };
    return us_array_literal(p, b->n, create_column_value, &c);
}

/* One user's creates in one workspace, one statement; each slot's rc is
 * US_DB_OK (created) or US_DB_LIMIT. */
static us_db_rc create_body(us_pg_db *db, apr_pool_t *p, void *arg)
{
    const create_batch_args *b = arg;
    const insert_args *first = b->slots[0].item->arg;
    const void *args[2 + CREATE_COLS];
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    args[0] = first->s->workspace;
    args[1] = first->s->user_id;
    for (int c = 0; c < CREATE_COLS; c++)
        args[2 + c] = create_column(p, b, c);
    for (int i = 0; i < b->n; i++)
        b->slots[i].item->rc = US_DB_LIMIT;
    us_db_rc rc = us_pg_select(db, p, US_STMT_SESSIONS_CREATE, args, &res);
    if (rc != US_DB_OK)
        return rc;
    while (us_pg_next_row(db, p, res, &row) == US_DB_OK) {
        long long k = us_pg_entry_ll(db, row, 0) - 1;
        if (k < 0 || k >= b->n)
            continue;
        insert_args *a = b->slots[k].item->arg;
        a->created_at = us_pg_entry_ll(db, row, 1);
        a->expires_at = us_pg_entry_ll(db, row, 2);
        b->slots[k].item->rc = US_DB_OK;
    }
    return US_DB_OK;
}

/* Creates one batch of slots; an error leaves their rc as it was. */
static us_db_rc create_run(us_pg_db *db, apr_pool_t *p, const create_slot *slots, int n)
{
    create_batch_args b = { slots, n };
    return us_pg_run(db, p, create_body, &b, 0);
}

static int by_user(const void *a, const void *b)
{
    const insert_args *x = ((const create_slot *)a)->item->arg;
    const insert_args *y = ((const create_slot *)b)->item->arg;
    int c = strcmp(x->s->user_id, y->s->user_id);
    if (!c)
        c = strcmp(x->s->workspace, y->s->workspace);
    return c ? c : strcmp(x->s->id, y->s->id);
}

typedef struct {
    us_pg_db *db;
    apr_pool_t *p;
    const us_group_item *own; /* the leader's own create */
} create_leader;

static void create_batch(void *ctx, us_group_item *const *items, int n)
{
    const create_leader *l = ctx;
    create_slot sorted[US_GROUP_MAX] = { { NULL } };
    for (int i = 0; i < n; i++)
        sorted[i].item = items[i];
    if (n > 1)
        qsort(sorted, (size_t)n, sizeof(sorted[0]), by_user);
    /* one statement per user and workspace: it holds the locks a single
     * create holds, taken in the same order, so no new lock cycle with a
     * workspace delete, the sweep or another node's creates */
    for (int i = 0, j; i < n; i = j) {
        const insert_args *first = sorted[i].item->arg;
        for (j = i + 1; j < n; j++) {
            const insert_args *a = sorted[j].item->arg;
            if (strcmp(a->s->user_id, first->s->user_id) != 0 ||
                strcmp(a->s->workspace, first->s->workspace) != 0)
                break;
        }
        us_db_rc rc = create_run(l->db, l->p, sorted + i, j - i);
        int unknown = rc != US_DB_OK && l->db->outcome_unknown;
        if (rc != US_DB_OK)
            for (int k = i; k < j; k++)
                /* the leader's create alone reports its failure; any other
                 * runs again on its own connection, which then tells its
                 * own failure (the message is on the connection), unless
                 * the batch may have created it */
                sorted[k].item->rc = unknown ? CREATE_UNKNOWN
                                     : j - i == 1 && sorted[k].item == l->own ? (int)rc
                                                                               : CREATE_ALONE;
    }
}

/* A create whose statement lost its connection was committed if the
 * server got that far: the session is read back by its id (its id is new,
 * so a row is this create's). Not there, or the database still away: a 503
 * as for any lost statement, and the client's retry creates another. */
static us_db_rc create_read_back(us_pg_db *db, apr_pool_t *p, insert_args *a)
{
    char err[US_PG_ERR_MAX];
    snprintf(err, sizeof(err), "%s", db->err ? db->err : "connection lost");
    apr_int64_t t = a->now;
    const void *args[] = { &t, a->s->id };
    us_session got;
    us_db_rc rc = us_pg_select_session(db, p, US_STMT_SESSION_BY_ID, args, &got);
    if (rc == US_DB_OK && !strcmp(got.user_id, a->s->user_id) &&
        !strcmp(got.workspace, a->s->workspace)) {
        us_log(db->conf->log, US_LOG_INFO, 0, US_LOGNO_PG_BROKEN,
               "session %s was created before its connection was lost", a->s->id);
        a->created_at = got.created_at;
        a->expires_at = got.expires_at;
        return US_DB_OK;
    }
    us_pg_set_err(db, "%s", err);
    db->outcome_unknown = 1;
    return US_DB_BUSY;
}

us_db_rc us_pg_session_insert(us_db *base, apr_pool_t *p, us_session *s, int max_open,
                              apr_time_t now)
{
    us_pg_db *db = us_pg_of(base);
    insert_args a = { s, max_open, now, s->created_at, s->expires_at };
    us_group_item item = { .arg = &a };
    create_leader l = { db, p, &item };
    int rc = db->conf->creates ? us_group_run(db->conf->creates, &item, create_batch, &l)
                               : CREATE_ALONE;
    if (rc == CREATE_ALONE) {
        create_slot slot = { &item };
        rc = create_run(db, p, &slot, 1);
        if (rc == US_DB_OK)
            rc = item.rc;
        else if (db->outcome_unknown)
            rc = CREATE_UNKNOWN;
    }
    if (rc == CREATE_UNKNOWN)
        rc = create_read_back(db, p, &a);
    if (rc == US_DB_OK) {
        s->created_at = a.created_at;
        s->expires_at = a.expires_at;
    }
    return (us_db_rc)rc;
}

static us_db_rc expire_body(us_pg_db *db, apr_pool_t *p, void *arg)
{
    long long *count = arg;
    long long mine = 0;
    us_db_rc rc = us_pg_select_ll(db, p, US_STMT_SWEEP_LOCK, NULL, &mine, NULL);
    if (rc != US_DB_OK || !mine)
        return rc; /* another node sweeps now */
    return us_pg_select_ll(db, p, US_STMT_SESSIONS_EXPIRE, NULL, count, NULL);
}

us_db_rc us_pg_expire_sessions(us_db *base, apr_pool_t *p, int *count)
{
    long long n = 0;
    us_db_rc rc = us_pg_txn(us_pg_of(base), p, expire_body, &n);
    *count = rc == US_DB_OK ? (int)n : 0;
    return rc;
}
