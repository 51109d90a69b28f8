/*
 * us_files_sweep.h - the sweep of stored workspace files no row refers to.
 * A worker that dies between publishing a file and deleting it again (a
 * FAIL-mode file whose name was taken at commit, an OVERWRITE's replaced
 * file) leaves bytes under the storage's files that nothing would remove.
 * Rounds, one at a time across every process and node (a us_turn of the
 * store), each look at one page of the stored files from where the last
 * round stopped. Messages 1023-1025. Pure: APR, the store, the storage.
 */
#ifndef US_FILES_SWEEP_H
#define US_FILES_SWEEP_H

#include "us_log.h"
#include "us_storage.h"
#include "us_store.h"

#include <apr_atomic.h>

#define US_FILES_SWEEP_TURN "files_sweep" /* its us_turn */
#define US_FILES_SWEEP_PAGE 1000          /* files looked at per round */
/* The grace by default, in ingest leases: a file older than that is no
 * in-flight ingestion's copy (those stay referenced by their PENDING
 * upload anyway) nor a POST /files between its commit and its row. */
#define US_FILES_SWEEP_LEASES 5
/* The second look's delay at most (a shorter lease shortens it): longer
 * than a POST /files takes from its object to its row - a connection from
 * the pool (10 s at most) and the write's busy waits included */
#define US_FILES_SWEEP_SECOND_LOOK apr_time_from_sec(30)

typedef struct {
    us_storage *storage;
    const us_logger *log;          /* may be NULL */
    apr_interval_time_t grace;     /* a file written more recently is never removed */
    apr_interval_time_t interval;  /* from one round to the next, across the nodes */
    int page;                      /* files per round */
    apr_interval_time_t second_look; /* from the first look to the second (0: none) */
    volatile apr_uint32_t *stop;   /* may be NULL; nonzero: the wait for the second look ends
                                    * the round, nothing deleted */
} us_files_sweep_config;

/* One round, when it is this caller's turn: lists the next page of the
 * stored files and deletes each one that (a) no row refers to
 * (us_file_id_referenced), (b) was written more than cfg->grace ago and
 * (c) still has no row at a second check cfg->second_look later, just
 * before its delete (an object store may date a multipart object by its
 * start, so a POST /files of a big file can appear old a moment before its
 * row is written: the second look outwaits that moment); logs how
 * many it removed (1023). The turn is given back with the page's end as
 * the next round's start (the first file again after the last page).
 * Returns how many files it removed; -1 when it did not run (not its turn,
 * or the store or the storage failed: logged, 1024). */
int us_files_sweep(us_db *db, apr_pool_t *p, const us_files_sweep_config *cfg);

#endif
