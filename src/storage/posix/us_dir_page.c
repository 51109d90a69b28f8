/* us_dir_page.c - one page of a directory's files (us_dir_page.h). */
#include "us_dir_page.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* a kept name; its buffer is reused when a lesser name replaces it */
typedef struct {
    char *name;
    size_t cap;
} slot;

/* the least names seen so far, the greatest on top (a max-heap) */
typedef struct {
    slot *v;
    int n, cap, limit;
} heap;

static void swap(slot *a, slot *b)
{
    slot t = *a;
    *a = *b;
    *b = t;
}

static void sift_up(heap *h, int i)
{
    while (i > 0 && strcmp(h->v[(i - 1) / 2].name, h->v[i].name) < 0) {
        swap(&h->v[(i - 1) / 2], &h->v[i]);
        i = (i - 1) / 2;
    }
}

static void sift_down(heap *h, int i)
{
    for (;;) {
        int l = 2 * i + 1, r = l + 1, top = i;
        if (l < h->n && strcmp(h->v[l].name, h->v[top].name) > 0)
            top = l;
        if (r < h->n && strcmp(h->v[r].name, h->v[top].name) > 0)
            top = r;
        if (top == i)
            return;
        swap(&h->v[i], &h->v[top]);
        i = top;
    }
}

static void put(apr_pool_t *p, slot *s, const char *name, size_t len)
{
    if (len + 1 > s->cap) {
        /* a slot's second buffer holds any name: at most two per slot */
        s->cap = s->cap && len + 1 <= NAME_MAX + 1 ? NAME_MAX + 1 : len + 1;
        s->name = apr_palloc(p, s->cap);
    }
    memcpy(s->name, name, len + 1);
}

/* Offers a name: kept when among the limit least; *more once one is not. */
static void offer(apr_pool_t *p, heap *h, const char *name, int *more)
{
    size_t len = strlen(name);
    if (h->n < h->limit) {
        if (h->n == h->cap) {
            int cap = h->cap * 2 < h->limit ? h->cap * 2 : h->limit;
            slot *v = apr_pcalloc(p, (size_t)cap * sizeof(slot));
            memcpy(v, h->v, (size_t)h->n * sizeof(slot));
            h->v = v;
            h->cap = cap;
        }
        put(p, &h->v[h->n], name, len);
        sift_up(h, h->n++);
        return;
    }
    *more = 1;
    if (strcmp(name, h->v[0].name) >= 0)
        return;
    put(p, &h->v[0], name, len);
    sift_down(h, 0);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const slot *)a)->name, ((const slot *)b)->name);
}

/* 1 when the entry is a regular file (lstat's view, as the entry's type). */
static int regular(DIR *d, const struct dirent *e)
{
    struct stat sb;
    if (e->d_type != DT_UNKNOWN)
        return e->d_type == DT_REG;
    return fstatat(dirfd(d), e->d_name, &sb, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(sb.st_mode);
}

apr_status_t us_dir_page(apr_pool_t *p, const char *dir, const char *after, int limit,
                         apr_array_header_t **files, const char **next)
{
    heap h = { NULL, 0, 0, limit };
    int more = 0;
    apr_status_t rv = APR_SUCCESS;
    const struct dirent *e;

    *files = apr_array_make(p, 1, sizeof(us_storage_file));
    *next = NULL;
    if (limit <= 0)
        return APR_EINVAL;
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT ? APR_SUCCESS : APR_FROM_OS_ERROR(errno);
    h.cap = limit < 64 ? limit : 64;
    h.v = apr_pcalloc(p, (size_t)h.cap * sizeof(slot));
    for (errno = 0; (e = readdir(d)) != NULL; errno = 0)
        if (e->d_name[0] != '.' && strcmp(e->d_name, after) > 0 && regular(d, e))
            offer(p, &h, e->d_name, &more);
    if (errno != 0)
        rv = APR_FROM_OS_ERROR(errno);
    if (rv == APR_SUCCESS && h.n > 0) {
        qsort(h.v, (size_t)h.n, sizeof(slot), by_name);
        *files = apr_array_make(p, h.n, sizeof(us_storage_file));
        for (int i = 0; i < h.n && rv == APR_SUCCESS; i++) {
            struct stat sb;
            if (fstatat(dirfd(d), h.v[i].name, &sb, AT_SYMLINK_NOFOLLOW) != 0) {
                if (errno != ENOENT)
                    rv = APR_FROM_OS_ERROR(errno);
                continue; /* removed since the directory was read */
            }
            if (!S_ISREG(sb.st_mode))
                continue;
            us_storage_file *f = apr_array_push(*files);
            f->file_id = h.v[i].name;
            f->modified = apr_time_from_sec(sb.st_mtim.tv_sec) + sb.st_mtim.tv_nsec / 1000;
        }
        if (more)
            *next = h.v[h.n - 1].name;
    }
    closedir(d);
    if (rv != APR_SUCCESS) {
        (*files)->nelts = 0;
        *next = NULL;
    }
    return rv;
}

int us_dir_next(apr_dir_t *d, apr_finfo_t *fi, apr_int32_t wanted)
{
    apr_status_t rv = apr_dir_read(fi, wanted, d);
    return rv == APR_SUCCESS || rv == APR_INCOMPLETE;
}
