/*
 * us_list_ops.c - the lists of us_store.h paged by offset or by cursor (a
 * workspace's sessions, a session's files), written once over the
 * backends' generic entries.
 */
#include "us_ops.h"

#include <string.h>

/* A cursor page is asked with one row more, which tells whether more
 * follow; `before` rows come nearest first and are turned round. An offset
 * page has more when the count says so. */
static us_page page_ask(const us_page *pg)
{
    us_page ask = *pg;
    if (pg->cursor)
        ask.limit = pg->limit + 1;
    return ask;
}

static void page_finish(const us_page *pg, apr_array_header_t *rows, long long total,
                        int *has_more)
{
    if (!pg->cursor) {
        *has_more = pg->offset < total && pg->offset + rows->nelts < total;
        return;
    }
    *has_more = rows->nelts > pg->limit;
    if (*has_more)
        rows->nelts = (int)pg->limit;
    if (!pg->before)
        return;
    apr_size_t size = (apr_size_t)rows->elt_size;
    char *tmp = apr_palloc(rows->pool, size);
    for (int i = 0, j = rows->nelts - 1; i < j; i++, j--) {
        char *a = rows->elts + (apr_size_t)i * size;
        char *b = rows->elts + (apr_size_t)j * size;
        memcpy(tmp, a, size);
        memcpy(a, b, size);
        memcpy(b, tmp, size);
    }
}

static int rows_hint(long long limit)
{
    return (int)(limit > 0 && limit < 1000 ? limit : 16);
}

/* One family of list statements: by offset, after and before a cursor,
 * for each filter of the list; each one gives the count of the whole list
 * beside its page (COUNTED_PAGE of us_sql_shared.h). */
typedef struct {
    us_stmt_id list, after, before;
} list_family;

static const list_family SESSION_LISTS[] = {
    { US_STMT_SESSION_LIST_ALL, US_STMT_SESSION_AFTER_ALL, US_STMT_SESSION_BEFORE_ALL },
    { US_STMT_SESSION_LIST_EXPIRED, US_STMT_SESSION_AFTER_EXPIRED,
      US_STMT_SESSION_BEFORE_EXPIRED },
    { US_STMT_SESSION_LIST_ACTIVE, US_STMT_SESSION_AFTER_ACTIVE,
      US_STMT_SESSION_BEFORE_ACTIVE },
};

static const list_family FILE_LISTS[] = {
    { US_STMT_FILES_LIST_ALL, US_STMT_FILES_AFTER_ALL, US_STMT_FILES_BEFORE_ALL },
    { US_STMT_FILES_LIST_STATUS, US_STMT_FILES_AFTER_STATUS, US_STMT_FILES_BEFORE_STATUS },
};

/* The rows of a counted page: fn reads the page's columns of a row into
 * rows, the count is the column count_col. */
typedef struct {
    us_row_fn fn;
    apr_array_header_t *rows;
    int count_col;
    long long *total;
} counted_rows;

static void push_counted(const us_row *r, apr_pool_t *p, void *out)
{
    counted_rows *c = out;
    const char *first = apr_dbd_get_entry(r->drv, r->row, 0);
    *c->total = us_row_ll(r, c->count_col);
    /* an empty page's one row has its page columns NULL (PostgreSQL's
     * driver reads NULL as ""); every listed row has a non-empty id */
    if (first && *first)
        c->fn(r, p, c->rows);
}

/* The page of fam with the count of its list into *total, in one
 * statement (args: the count's, then the page's), the rows (of fn) into
 * rows, one more than the page with a cursor (page_ask). */
static us_db_rc list_page(us_db *db, apr_pool_t *p, const list_family *fam, const us_page *pg,
                          const void **args, us_row_fn fn, int count_col,
                          apr_array_header_t *rows, long long *total)
{
    counted_rows c = { fn, rows, count_col, total };
    us_stmt_id id = !pg->cursor ? fam->list : pg->before ? fam->before : fam->after;
    *total = 0;
    return us_select(db, p, id, args, push_counted, &c, NULL);
}

/* the count's column, after the page's: SESSION_ITEM_COLS; SESSION_FILE_COLS
 * and uploaded_at */
#define SESSION_COUNT_COL 9
#define FILE_COUNT_COL 5

us_db_rc us_session_list(us_db *db, apr_pool_t *p, const char *workspace, int is_expired,
                         const us_page *page, apr_time_t now,
                         apr_array_header_t **rows, long long *total, int *has_more)
{
    us_page pg = page_ask(page);
    apr_int64_t t = now, lim = pg.limit, off = pg.offset;
    int f = is_expired < 0 ? 0 : is_expired ? 1 : 2;
    /* the count's (workspace, and `now` with a filter), then the page's;
     * SESSION_ITEM_COLS starts with the `now` of the derived status */
    const void *list_all[] = { workspace, &t, workspace, &lim, &off };
    const void *list_f[] = { workspace, &t, &t, workspace, &t, &lim, &off };
    const void *cur_all[] = { workspace, &t, workspace, workspace, pg.cursor, &lim };
    const void *cur_f[] = { workspace, &t, &t, workspace, &t, workspace, pg.cursor, &lim };
    const void **args = pg.cursor ? (f == 0 ? cur_all : cur_f) : (f == 0 ? list_all : list_f);
    *has_more = 0;
    *rows = apr_array_make(p, rows_hint(pg.limit), sizeof(us_session));
    us_db_rc rc = list_page(db, p, &SESSION_LISTS[f], &pg, args, us_push_session_item,
                            SESSION_COUNT_COL, *rows, total);
    if (rc == US_DB_OK)
        page_finish(page, *rows, *total, has_more);
    return rc;
}

static void push_session_file(const us_row *r, apr_pool_t *p, void *out)
{
    us_session_file_row *f = apr_array_push(out);
    f->file_ingestion_id = us_row_str(r, p, 0);
    f->name = us_row_str(r, p, 1);
    f->status = us_row_str(r, p, 2);
    f->reason = us_row_null(r, p, 3);
}

us_db_rc us_session_files_list(us_db *db, apr_pool_t *p, const char *session_id,
                               const char *status, const us_page *page,
                               apr_array_header_t **rows, long long *total, int *has_more)
{
    us_page pg = page_ask(page);
    apr_int64_t lim = pg.limit, off = pg.offset;
    /* the count's (session, and status with one), then the page's */
    const void *list_all[] = { session_id, session_id, &lim, &off };
    const void *list_st[] = { session_id, status, session_id, status, &lim, &off };
    const void *cur_all[] = { session_id, session_id, session_id, pg.cursor, &lim };
    const void *cur_st[] = { session_id, status, session_id, status, session_id, pg.cursor,
                             &lim };
    const void **args = pg.cursor ? (status ? cur_st : cur_all) : (status ? list_st : list_all);
    *has_more = 0;
    *rows = apr_array_make(p, rows_hint(pg.limit), sizeof(us_session_file_row));
    us_db_rc rc = list_page(db, p, &FILE_LISTS[status ? 1 : 0], &pg, args, push_session_file,
                            FILE_COUNT_COL, *rows, total);
    if (rc == US_DB_OK)
        page_finish(page, *rows, *total, has_more);
    return rc;
}
