/*
 * us_lasting_pool.h - a pool for objects that outlive the pools of the
 * callers that made them (a database's writer and its lock, which last as
 * long as any connection of the process to that database), made outside
 * any pool httpd owns.
 */
#ifndef US_LASTING_POOL_H
#define US_LASTING_POOL_H

#include <apr_allocator.h>
#include <apr_pools.h>

/* An unmanaged pool with an allocator of its own, which *allocator receives
 * (and the pool owns: apr_pool_destroy frees both). The caller keeps
 * *allocator in a global or in heap memory for as long as the pool lives:
 * APR may mmap() the pool's own memory, and a leak checker does not look
 * there, so the pool's pointer alone does not keep the allocator reachable. */
apr_status_t us_lasting_pool_create(apr_pool_t **pool, apr_allocator_t **allocator);

#endif
