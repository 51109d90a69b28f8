/*
 * us_s3_delete_many.h - deleting many keys of the store in few requests:
 * DeleteObjects (POST ?delete) of up to US_S3_DELETE_BATCH keys each, its
 * document and what its answer says. Where a store does not do it (501,
 * 400, 405), the keys of that request, and each key XML 1.0 cannot carry,
 * are deleted one request per key, as us_s3_delete_key.
 */
#ifndef US_S3_DELETE_MANY_H
#define US_S3_DELETE_MANY_H

#include "us_s3_conf.h"

#include <apr_tables.h>

/* S3's limit of keys per DeleteObjects request */
#ifndef US_S3_DELETE_BATCH
#define US_S3_DELETE_BATCH 1000
#endif

/* Whether a DeleteObjects document can carry key: no control character
 * but tab, line feed and carriage return (XML 1.0 has no way to write the
 * others). */
int us_s3_key_fits_xml(const char *key);

/* The quiet DeleteObjects document (only failures are answered) of the
 * n keys (const char *) of keys from index from; NULL when one of them
 * holds a character XML 1.0 cannot carry (a control character other than
 * tab, line feed and carriage return, which go as character references). */
const char *us_s3_delete_doc(apr_pool_t *p, const apr_array_header_t *keys, int from, int n);

/* How many keys a quiet DeleteObjects answer (body) says were not
 * deleted: its <Error> entries, but those whose code is NoSuchKey (gone
 * already). The first one's key and code in *key and *code (in p; NULL
 * without one). -1 when body is no DeleteResult (cut short, an error
 * document): it says nothing about any key. */
int us_s3_delete_failures(apr_pool_t *p, const char *body, const char **key, const char **code);

/* Deletes keys (const char *) and answers how many are left: not deleted,
 * or not tried because the store stopped answering. A batch the store
 * answered with an outage is left whole, the next ones tried; the first
 * request the store does not answer at all (no connection, no answer in
 * time) ends it all, the rest counted as left. Failures logged as msgno
 * ("s3 <what> ..."). Memory: a subpool of p per batch. */
int us_s3_delete_keys(const us_storage *st, apr_pool_t *p, int msgno, const char *what,
                      const apr_array_header_t *keys);

#endif
