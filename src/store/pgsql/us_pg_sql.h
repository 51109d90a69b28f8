/*
 * us_pg_sql.h - every SQL statement the PostgreSQL backend runs (pure
 * text, PostgreSQL's dialect). Placeholders use apr_dbd's typed %-syntax
 * (%s, %d, %lld), which the pgsql driver turns into $n without regard to
 * string literals: a literal % must be written %%.
 */
#ifndef US_PG_SQL_H
#define US_PG_SQL_H

#include "us_store_backend.h"

/* The schema version this build writes and understands. */
#define US_PG_SCHEMA_VERSION 21

/* Advisory lock keys (two int4 keys: class, object). */
#define US_PG_LOCK_MIGRATE "1, 0"
#define US_PG_LOCK_SWEEP "2, 0"
#define US_PG_LOCK_TURN_CLASS "3" /* object: hashtext(workspace) */
/* object: hashtext(workspace); shared by writers adding data, exclusive for
 * its delete */
#define US_PG_LOCK_WORKSPACE_CLASS "4"
/* object: hashtext(url) of a webhook URL; shared by a transaction writing
 * events (the outbox trigger), exclusive for the URL's drop */
#define US_PG_LOCK_WEBHOOK_URL_CLASS "5"

/* Statements that bring a schema at version `from` to version from+1;
 * NULL-terminated; NULL when from >= US_PG_SCHEMA_VERSION. */
const char *const *us_pg_sql_migration(int from);

extern const char US_PG_SQL_MIGRATE_WAIT[];
extern const char US_PG_SQL_MIGRATE_LOCK[];
extern const char US_PG_SQL_META_TABLE[];
extern const char US_PG_SQL_SCHEMA_VERSION_GET[];
extern const char US_PG_SQL_SCHEMA_VERSION_SET[]; /* %d */

/* The PostgreSQL text of each shared statement (us_store_backend.h). */
const us_stmt_def *us_pg_sql_statement(us_stmt_id id);

/* The columns of a workspace file list row (WORKSPACE_FILE_LIST_COLS), for
 * statements built per request. */
const char *us_pg_sql_workspace_file_list_cols(void);

#endif
