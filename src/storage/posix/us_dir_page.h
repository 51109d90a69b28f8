/*
 * us_dir_page.h - one page of a directory's regular files in name order,
 * in memory and stats bounded by the page: the files sweep's listing of
 * the posix workspace files (us_storage_files_page); reading a directory
 * past entries APR could not stat.
 */
#ifndef US_DIR_PAGE_H
#define US_DIR_PAGE_H

#include "us_storage.h"

#include <apr_file_info.h>
#include <apr_pools.h>
#include <apr_tables.h>

/* Up to limit (> 0) regular files of dir (us_storage_file: name and mtime)
 * whose names sort after `after` (strcmp), in name order; names starting
 * with '.' are skipped. *next: the page's last name when more files follow,
 * else NULL. One pass over the directory keeps only the limit least names
 * (types from the directory entries, no stat), then stats those alone; one
 * removed meanwhile is left out. p grows by O(limit), whatever the
 * directory's size. A missing dir is an empty page. */
apr_status_t us_dir_page(apr_pool_t *p, const char *dir, const char *after, int limit,
                         apr_array_header_t **files, const char **next);

/* The next entry of d into *fi, with the fields wanted where they could be
 * had: 1 while entries remain. An entry APR had to stat and could not
 * (removed meanwhile; no d_type on this file system) comes back with
 * APR_INCOMPLETE and fewer fields: the caller checks fi->valid, the walk
 * goes on. 0 at the end or on a read error. */
int us_dir_next(apr_dir_t *d, apr_finfo_t *fi, apr_int32_t wanted);

#endif
