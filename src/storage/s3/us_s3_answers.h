/*
 * us_s3_answers.h - how the s3 backend reads parts of the store's answers
 * it cannot take on trust: which 404 means a missing key, a Content-Length
 * header, listing markers that must move on, a ranged answer's
 * Content-Range, an abort's answer, a listing's entries, and how long a
 * request may wait on a store that sends nothing. Pure: no request.
 */
#ifndef US_S3_ANSWERS_H
#define US_S3_ANSWERS_H

#include <apr_hash.h>
#include <apr_pools.h>

/* Seconds of silence (no byte either way) after which a request is cut:
 * most requests, and a server-side copy or a completion, during which the
 * store may legitimately send nothing while it copies or assembles. */
#ifndef US_S3_STALL_SECONDS
#define US_S3_STALL_SECONDS 30
#endif
#ifndef US_S3_COPY_STALL_SECONDS
#define US_S3_COPY_STALL_SECONDS 1800
#endif

/* The stall bound of a request: method, its canonical query (or NULL),
 * and whether it names an x-amz-copy-source. CopyObject, UploadPartCopy and
 * CompleteMultipartUpload (POST ?uploadId=) get US_S3_COPY_STALL_SECONDS. */
long us_s3_stall_seconds(const char *method, const char *query, int copies);

typedef enum {
    US_S3_404_KEY,    /* the key is not there (NoSuchKey) */
    US_S3_404_OTHER,  /* something else is missing (NoSuchBucket, an
                       * answer that is not the store's): an error */
    US_S3_404_ASK     /* a HEAD (no error document): the bucket tells */
} us_s3_404;

/* Whether a CopyObject's or a CompleteMultipartUpload's answer says the
 * object was made: a 200 whose document holds the result's <ETag> and no
 * <Error>. A 200 with neither (a body cut short, a copy that failed after
 * its 200 went out) says nothing: the caller takes it as an outage and
 * does it again, never as a success whose source it may delete. */
int us_s3_result_done(long status, const char *body);

/* What a 404 answer to a request on a key means, from its error document
 * (body, NULL or "" for none); head: the request was a HEAD. */
us_s3_404 us_s3_404_of(int head, const char *body);

/* The <Code> of an error document into code (size n), "" without one. */
void us_s3_error_code(const char *body, char *code, apr_size_t n);

/* A Content-Length header's value (v, len bytes, spaces and CRLF around
 * allowed): 1 with *out, 0 when it is not a non-negative decimal number. */
int us_s3_parse_length(const char *v, apr_size_t len, apr_off_t *out);

/* Whether the markers (a, b; either NULL, as b "") that continue a listing were
 * already given by an earlier page of it: a store naming them again would
 * be listed for ever. Remembers them in seen (its pool's copies). */
int us_s3_marker_repeats(apr_hash_t *seen, const char *a, const char *b);

/* Whether an AbortMultipartUpload's answer (status, its error document
 * body or NULL) says the upload is gone: aborted (204), or gone before
 * (404 NoSuchUpload). Any other 404 (NoSuchBucket, one that is not the
 * store's) is not: the upload may still be there. */
int us_s3_abort_done(long status, const char *body);

/* Whether a Content-Range header's value (v, len bytes, spaces and CRLF
 * around allowed) names bytes first-last of an object of size bytes
 * ("bytes first-last/size", the size may be "*"): a 206 for another range holds
 * other bytes than those asked for. */
int us_s3_content_range_is(const char *v, apr_size_t len, apr_off_t first, apr_off_t last,
                           apr_off_t size);

/* The text of the first <tag>...</tag> from *pos on, entities and character
 * references decoded (in p); NULL when there is none. *pos moves past it. */
char *us_s3_xml_next(apr_pool_t *p, const char **pos, const char *tag);

/* The next <tag>...</tag> from *pos on as it is, not decoded: a block whose
 * fields us_s3_xml_next then reads, each decoded once (decoding the block
 * too would turn a key's "&amp;#13;" into a carriage return); NULL when
 * there is none. *pos moves past it. */
char *us_s3_xml_block(apr_pool_t *p, const char **pos, const char *tag);

/* s with the spaces around it removed: in place, the result inside s. */
char *us_s3_trim(char *s);

/* One <Contents> entry of a ListObjectsV2 page. */
typedef struct {
    char *key;              /* in p */
    char *etag;             /* in p; NULL without one */
    apr_off_t size;
    const char *modified;   /* in tmp; NULL without one */
} us_s3_entry;

typedef enum {
    US_S3_ENTRY_OK,
    US_S3_ENTRY_NO_KEY,     /* an object the listing would leave out */
    US_S3_ENTRY_NO_SIZE     /* no size, or not a number: not an empty object */
} us_s3_entry_rc;

/* The fields of a <Contents> block (us_s3_xml_block): the key and the ETag
 * in p, the rest in tmp. An entry without a key or a size is a bad answer,
 * never skipped nor read as empty. */
us_s3_entry_rc us_s3_list_entry(apr_pool_t *p, apr_pool_t *tmp, const char *block,
                                us_s3_entry *e);

#endif
