/*
 * us_s3_parts.c - the byte ranges of a copy in parts (us_s3_parts.h).
 */
#include "us_s3_parts.h"

apr_array_header_t *us_s3_part_ranges(apr_pool_t *p, long long size, long long part)
{
    if (part <= 0)
        part = 1;
    if (size > 0 && (size + part - 1) / part > US_S3_MAX_PARTS)
        part = (size + US_S3_MAX_PARTS - 1) / US_S3_MAX_PARTS;
    long long n = size > 0 ? (size + part - 1) / part : 0;
    apr_array_header_t *ranges = apr_array_make(p, n > 0 ? (int)n : 1, sizeof(us_s3_range));
    for (long long first = 0; first < size; first += part) {
        us_s3_range *r = apr_array_push(ranges);
        r->first = first;
        r->last = (size - first > part ? first + part : size) - 1;
    }
    return ranges;
}
