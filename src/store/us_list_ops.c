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
 * and the count, for each filter of the list. */
typedef struct {
    us_stmt_id list, after, before, count;
} list_family;

static const list_family SESSION_LISTS[] = {
    { US_STMT_SESSION_LIST_ALL, US_STMT_SESSION_AFTER_ALL, US_STMT_SESSION_BEFORE_ALL,
      US_STMT_SESSION_COUNT_ALL },
    { US_STMT_SESSION_LIST_EXPIRED, US_STMT_SESSION_AFTER_EXPIRED,
      US_STMT_SESSION_BEFORE_EXPIRED, US_STMT_SESSION_COUNT_EXPIRED },
    { US_STMT_SESSION_LIST_ACTIVE, US_STMT_SESSION_AFTER_ACTIVE,
      US_STMT_SESSION_BEFORE_ACTIVE, US_STMT_SESSION_COUNT_ACTIVE },
};

static const list_family FILE_LISTS[] = {
    { US_STMT_FILES_LIST_ALL, US_STMT_FILES_AFTER_ALL, US_STMT_FILES_BEFORE_ALL,
      US_STMT_FILES_COUNT_ALL },
    { US_STMT_FILES_LIST_STATUS, US_STMT_FILES_AFTER_STATUS, US_STMT_FILES_BEFORE_STATUS,
      US_STMT_FILES_COUNT_STATUS },
};

/* The page of fam: counts into *total, the rows (of fn) into rows, one
 * more than the page with a cursor (page_ask). */
static us_db_rc list_page(us_db *db, apr_pool_t *p, const list_family *fam, const us_page *pg,
                          const void **count_args, const void **list_args,
                          const void **cursor_args, us_row_fn fn, apr_array_header_t *rows,
                          long long *total)
{
    *total = 0;
    us_db_rc rc = us_select(db, p, fam->count, count_args, us_row_to_ll, total, NULL);
    if (rc != US_DB_OK)
        return rc;
    if (!pg->cursor)
        return us_select(db, p, fam->list, list_args, fn, rows, NULL);
    return us_select(db, p, pg->before ? fam->before : fam->after, cursor_args, fn, rows, NULL);
}

us_db_rc us_session_list(us_db *db, apr_pool_t *p, const char *workspace, int is_expired,
                         const us_page *page, apr_time_t now,
                         apr_array_header_t **rows, long long *total, int *has_more)
{
    us_page pg = page_ask(page);
    apr_int64_t t = now, lim = pg.limit, off = pg.offset;
    int f = is_expired < 0 ? 0 : is_expired ? 1 : 2;
    /* SESSION_ITEM_COLS starts with the `now` of the derived status */
    const void *largs_all[] = { &t, workspace, &lim, &off };
    const void *largs_f[] = { &t, workspace, &t, &lim, &off };
    const void *cur_all[] = { &t, workspace, workspace, pg.cursor, &lim };
    const void *cur_f[] = { &t, workspace, &t, workspace, pg.cursor, &lim };
    const void *cargs_all[] = { workspace };
    const void *cargs_f[] = { workspace, &t };
    *has_more = 0;
    *rows = apr_array_make(p, rows_hint(pg.limit), sizeof(us_session));
    us_db_rc rc = list_page(db, p, &SESSION_LISTS[f], &pg, f == 0 ? cargs_all : cargs_f,
                            f == 0 ? largs_all : largs_f, f == 0 ? cur_all : cur_f,
                            us_push_session_item, *rows, total);
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
    const void *cargs[] = { session_id, status };
    const void *largs_all[] = { session_id, &lim, &off };
    const void *largs_st[] = { session_id, status, &lim, &off };
    const void *cur_all[] = { session_id, session_id, pg.cursor, &lim };
    const void *cur_st[] = { session_id, status, session_id, pg.cursor, &lim };
    *has_more = 0;
    *rows = apr_array_make(p, rows_hint(pg.limit), sizeof(us_session_file_row));
    us_db_rc rc = list_page(db, p, &FILE_LISTS[status ? 1 : 0], &pg, cargs,
                            status ? largs_st : largs_all, status ? cur_st : cur_all,
                            push_session_file, *rows, total);
    if (rc == US_DB_OK)
        page_finish(page, *rows, *total, has_more);
    return rc;
}
