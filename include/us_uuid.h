/* us_uuid.h - random (version 4) UUIDs in canonical form, and parsing
 * UUIDs as pydantic does. Pure: APR. */
#ifndef US_UUID_H
#define US_UUID_H

#include <stddef.h>

typedef struct apr_pool_t apr_pool_t;

/* Writes a new UUID4 ("xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx") and NUL into out. */
void us_uuid4(char out[37]);

/* A UUID4 whose first 48 bits are the millisecond of usec (microseconds
 * since the epoch), the other 74 random: ids minted later sort after
 * earlier ones, so an index on them grows at its end instead of in random
 * pages (a file's id: us_files' primary key). */
void us_uuid4_timed(char out[37], long long usec);

/* The same UUID for the same (scope, name; scope holds no '/'), from their SHA-256 (with the
 * version-4 bits, as ids the API answers have): a direct upload's
 * file_ingestion_id before and after its listing is recorded. */
void us_uuid_of_name(apr_pool_t *p, const char *scope, const char *name, char out[37]);

/* Parse like pydantic-core (Rust uuid crate): hyphenated, 32-hex simple,
 * {braced}, urn:uuid:. On success writes the canonical lower-case hyphenated
 * form to out (37 bytes incl. NUL) and returns 1. On failure writes the
 * reason (e.g. "invalid length: expected length 32 for simple format,
 * found 3") to reason and returns 0. */
int us_uuid_parse(const char *in, char out[37], char *reason, size_t reasonlen);

#endif
