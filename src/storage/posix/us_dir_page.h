/*
 * us_dir_page.h - one page of a directory's regular files in name order,
 * in memory and stats bounded by the page: the files sweep's listing of
 * the posix workspace files (us_storage_files_page).
 */
#ifndef US_DIR_PAGE_H
#define US_DIR_PAGE_H

#include "us_storage.h"

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

#endif
