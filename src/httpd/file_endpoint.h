/*
 * file_endpoint.h - what the endpoints on workspace files share
 * (us_files_list.c, us_files_get.c, us_files_post.c, us_files_delete.c,
 * us_files_meta.c).
 */
#ifndef US_FILE_ENDPOINT_H
#define US_FILE_ENDPOINT_H

#include <jansson.h>
#include "us_module.h"

/* no store keeps U+0000 in metadata (PostgreSQL's jsonb refuses it) */
#define META_NUL_MSG "metadata cannot hold the character U+0000."

/* the 404 detail of a file id (%s) the workspace does not hold */
#define US_NO_FILE "There's no file with the ID '%s' in the workspace."

/* The stored meta text as the answer writes it: its object in jansson's
 * compact form, "{}" when there is none or it is not a JSON object. */
const char *us_files_meta_text(apr_pool_t *p, const char *text);

/* US_NO_FILE of an id that may hold a NUL (a JSON object's key), whole. */
json_t *us_files_no_file_text(apr_pool_t *p, const char *id, size_t id_len);

/* What an endpoint on one file does at each step of us_files_with_file_id. */
typedef struct {
    /* first, before the id is judged: reads what the query needs (a body),
     * leaving its 422 items in errs; DECLINED to go on, else answered (invalid
     * JSON, 400, 413). NULL: nothing. */
    int (*prepare)(request_rec *r, json_t *errs, void *baton);
    /* the query, on a pooled connection */
    us_db_rc (*query)(request_rec *r, const us_srv_conf *c, us_db *db, const char *ws,
                      const char *id, void *baton);
    /* the answer once the query found the file */
    int (*answer)(request_rec *r, const us_srv_conf *c, void *baton);
} us_file_ops;

/* The skeleton of every endpoint on one file (ops with baton): prepare,
 * the path's file_id (422), the query between us_acquire_db and
 * us_query_done (store failures 503/500), NOTFOUND 404, else the answer. */
int us_files_with_file_id(request_rec *r, us_srv_conf *c, const char *ws, const char *raw_id,
                          const us_file_ops *ops, void *baton);

#endif
