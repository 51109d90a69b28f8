/*
 * us_sql.h - every SQL statement the SQLite backend runs, in one place
 * (pure text). Placeholders use apr_dbd's typed %-syntax (%s, %d, %lld);
 * a literal % would have to be written %%.
 */
#ifndef US_SQL_H
#define US_SQL_H

#include "us_store_backend.h"

/* The schema version this build writes and understands. */
#define US_SCHEMA_VERSION 23

/* Statements run on every new connection (pragmas); NULL-terminated. */
const char *const *us_sql_connection_setup(void);

/* Statements that bring a schema at version `from` to version from+1;
 * NULL-terminated; NULL when from >= US_SCHEMA_VERSION. */
const char *const *us_sql_migration(int from);

/* Opens a transaction that holds the write lock from its first statement
 * (SQLite: BEGIN IMMEDIATE, so it waits on busy_timeout instead of failing
 * when it later upgrades from reading to writing). */
const char *us_sql_begin_write(void);

/* Migration helpers */
extern const char US_SQL_META_TABLE[];
extern const char US_SQL_SCHEMA_VERSION_GET[];
extern const char US_SQL_SCHEMA_VERSION_SET[]; /* %d */
extern const char US_SQL_CACHE_SIZE[];         /* %d: KiB */

/* The SQLite text of each shared statement (us_store_backend.h). */
const us_stmt_def *us_sql_statement(us_stmt_id id);
/* The columns of a workspace file list row (WORKSPACE_FILE_LIST_COLS), in
 * the order us_push_workspace_file expects. */
const char *us_sql_workspace_file_list_cols(void);

#endif
