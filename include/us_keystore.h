/*
 * us_keystore.h - the API keys in force in one process, re-read when the
 * key file changes. Pure: APR (threads, atomics) + us_auth.
 *
 * Each parsed key file is a generation with a pool of its own and a
 * reference count: the store holds one reference to the current
 * generation, every request holds one for as long as it uses a key. A
 * reload swaps the current generation for new requests; the old one is
 * destroyed when its last request releases it.
 *
 * The file is looked at (one stat: inode, size, mtime) at most once per
 * interval, by the one request that finds the interval over; the others
 * keep using the current keys meanwhile. A file that does not parse (or
 * cannot be read) leaves the current keys in force and is logged once
 * (US1401) until it changes again.
 */
#ifndef US_KEYSTORE_H
#define US_KEYSTORE_H

#include "us_auth.h"
#include "us_log.h"

#include <apr_pools.h>
#include <apr_file_info.h>
#include <apr_time.h>

/* What identifies one version of the key file. */
typedef struct {
    int exists;
    apr_ino_t inode;
    apr_dev_t device;
    apr_off_t size;
    apr_time_t mtime;
} us_keyfile_sig;

/* The signature of path now (exists = 0 when it cannot be stat'ed); p is unused (may be NULL). */
void us_keyfile_sig_get(const char *path, us_keyfile_sig *sig, apr_pool_t *p);

typedef struct us_keystore us_keystore;
typedef struct us_keys_gen us_keys_gen;

/* A store for path, owned by p (destroying p destroys every generation no
 * request holds). initial: the keys loaded from the file as it was at
 * initial_sig, in a pool that outlives p's use of them (not copied, never
 * destroyed by the store); interval 0 never re-reads. log may be NULL. */
apr_status_t us_keystore_create(apr_pool_t *p, const char *path, const us_keyring *initial,
                                const us_keyfile_sig *initial_sig,
                                apr_interval_time_t interval, const us_logger *log,
                                us_keystore **out);

/* The keys in force at now (re-reading the file first when the interval
 * is over and it changed); the generation is held until
 * us_keystore_release. Never NULL. */
us_keys_gen *us_keystore_acquire(us_keystore *ks, apr_time_t now);
const us_keyring *us_keys_gen_ring(const us_keys_gen *g);
void us_keystore_release(us_keys_gen *g);

/* Registers the release of g on pool p's cleanup (a request's pool). */
void us_keystore_release_with(apr_pool_t *p, us_keys_gen *g);

/* Stops (0) or changes the re-reading of the file. */
void us_keystore_set_interval(us_keystore *ks, apr_interval_time_t interval);

/* Number of generations loaded so far, 1 for the initial one (tests). */
unsigned us_keystore_generation(const us_keystore *ks);

#endif
