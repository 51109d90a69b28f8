/*
 * us_s3_spill.h - the memory s3 writers of one process may hold for the
 * parts they fill, and where a part goes past it. A writer reserves its
 * buffer from the budget as the buffer grows; one that cannot fills its
 * part in an unlinked temporary file instead, so that a stalled upload
 * holds page cache the kernel can write out, not the process's memory.
 * The budget is shared by the threads of one process (atomic, no lock).
 */
#ifndef US_S3_SPILL_H
#define US_S3_SPILL_H

#include <apr_pools.h>

typedef struct us_s3_budget us_s3_budget;

/* A budget of bytes (in p). */
us_s3_budget *us_s3_budget_create(apr_pool_t *p, apr_uint64_t bytes);

/* Reserves n bytes: 1, or 0 (nothing reserved) when that would pass the budget. */
int us_s3_budget_take(us_s3_budget *b, apr_uint64_t n);

/* Gives back n bytes a take reserved. */
void us_s3_budget_give(us_s3_budget *b, apr_uint64_t n);

/* Bytes reserved now. */
apr_uint64_t us_s3_budget_used(us_s3_budget *b);

/* A new unlinked file in dir, read-write, closed on exec: its descriptor,
 * or -1 with errno set. */
int us_s3_spill_open(const char *dir);

#endif
