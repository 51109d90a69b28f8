/*
 * us_s3_parts.h - how an object too large for one CopyObject is copied in
 * parts (UploadPartCopy): the byte ranges of its parts. Pure: no request.
 */
#ifndef US_S3_PARTS_H
#define US_S3_PARTS_H

#include <apr_pools.h>
#include <apr_tables.h>

/* S3 takes at most this many parts in one multipart upload. */
#define US_S3_MAX_PARTS 10000

/* One part: bytes first..last of the source, both included
 * (x-amz-copy-source-range: bytes=first-last). */
typedef struct {
    long long first, last;
} us_s3_range;

/* The parts (us_s3_range, in order) of an object of size bytes in parts
 * of part bytes: consecutive, covering every byte once, each part bytes
 * long but the last, which holds the rest. The part size grows to
 * ceil(size / US_S3_MAX_PARTS) when more parts would be needed. No part
 * for size <= 0; part <= 0 counts as 1. */
apr_array_header_t *us_s3_part_ranges(apr_pool_t *p, long long size, long long part);

#endif
