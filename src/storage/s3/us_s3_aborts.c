/* us_s3_aborts.c - multipart uploads left to abort again (us_s3_aborts.h). */
#include "us_s3_aborts.h"

#include <apr_thread_mutex.h>
#include <stdlib.h>
#include <string.h>

struct us_s3_aborts {
    apr_thread_mutex_t *mu;
    us_s3_abort *head;
    int n;
};

us_s3_aborts *us_s3_aborts_create(apr_pool_t *p)
{
    us_s3_aborts *a = apr_pcalloc(p, sizeof(*a));
    if (apr_thread_mutex_create(&a->mu, APR_THREAD_MUTEX_DEFAULT, p) != APR_SUCCESS)
        return NULL;
    return a;
}

int us_s3_aborts_add(us_s3_aborts *a, const char *key, const char *upload_id)
{
    if (!a)
        return 0;
    us_s3_abort *e = malloc(sizeof(*e));
    char *k = strdup(key), *id = strdup(upload_id);
    int kept = 0;
    apr_thread_mutex_lock(a->mu);
    if (e && k && id && a->n < US_S3_ABORTS_MAX) {
        e->key = k;
        e->upload_id = id;
        e->next = a->head;
        a->head = e;
        a->n++;
        kept = 1;
    }
    apr_thread_mutex_unlock(a->mu);
    if (!kept) {
        free(e);
        free(k);
        free(id);
    }
    return kept;
}

us_s3_abort *us_s3_aborts_take(us_s3_aborts *a)
{
    if (!a)
        return NULL;
    apr_thread_mutex_lock(a->mu);
    us_s3_abort *list = a->head;
    a->head = NULL;
    a->n = 0;
    apr_thread_mutex_unlock(a->mu);
    return list;
}

void us_s3_aborts_free(us_s3_abort *list)
{
    while (list) {
        us_s3_abort *next = list->next;
        free(list->key);
        free(list->upload_id);
        free(list);
        list = next;
    }
}
