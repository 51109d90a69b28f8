/*
 * us_turn_ops.c - the turns of jobs one worker runs at a time across nodes
 * and the row check of the files sweep (us_store.h), written once over
 * the backends' generic entries. A turn is one us_meta row whose value is
 * "<time> <place>": no one takes it before <time> (µs since the epoch, the
 * takers' clocks: a skew shifts a turn by as much, never lets two overlap
 * for longer than it).
 */
#include "us_ops.h"

#include <apr_strings.h>
#include <stdlib.h>
#include <string.h>

us_db_rc us_file_id_referenced(us_db *db, apr_pool_t *p, const char *file_id, int *referenced)
{
    const void *args[] = { file_id, file_id, file_id };
    int n = 0;
    us_db_rc rc = us_select(db, p, US_STMT_FILE_ID_REFERENCED, args, NULL, NULL, &n);
    *referenced = n > 0;
    return rc;
}

static us_db_rc turn_value(us_db *db, apr_pool_t *p, const char *name, const char **value)
{
    const void *args[] = { name };
    *value = NULL;
    return us_select_one(db, p, US_STMT_SWEEP_TURN_GET, args, us_row_to_str, value);
}

us_db_rc us_turn_take(us_db *db, apr_pool_t *p, const char *name, apr_time_t now,
                      apr_interval_time_t hold, us_turn *turn)
{
    const char *value;
    int nrows = 0;
    us_db_rc rc = turn_value(db, p, name, &value);
    if (rc == US_DB_NOTFOUND) { /* the first turn ever: a write only then */
        const void *args[] = { name };
        if ((rc = us_write_one(db, p, US_STMT_SWEEP_TURN_ADD, args, &nrows)) != US_DB_OK)
            return rc;
        rc = turn_value(db, p, name, &value);
    }
    if (rc != US_DB_OK || !value)
        return rc != US_DB_OK ? rc : US_DB_ERROR;
    char *rest;
    long long until = strtoll(value, &rest, 10);
    if (until > now)
        return US_DB_CONFLICT;
    turn->name = name;
    turn->place = *rest == ' ' ? rest + 1 : "";
    turn->held = apr_psprintf(p, "%" APR_INT64_T_FMT " %s", (apr_int64_t)(now + hold), turn->place);
    const void *args[] = { turn->held, name, value };
    if ((rc = us_write_one(db, p, US_STMT_SWEEP_TURN_SET, args, &nrows)) != US_DB_OK)
        return rc;
    return nrows == 1 ? US_DB_OK : US_DB_CONFLICT;
}

us_db_rc us_turn_give(us_db *db, apr_pool_t *p, const us_turn *turn, apr_time_t next_at,
                      const char *place)
{
    int nrows = 0;
    const char *value = apr_psprintf(p, "%" APR_INT64_T_FMT " %s", (apr_int64_t)next_at,
                                     place ? place : "");
    const void *args[] = { value, turn->name, turn->held };
    us_db_rc rc = us_write_one(db, p, US_STMT_SWEEP_TURN_SET, args, &nrows);
    return rc == US_DB_OK && nrows == 0 ? US_DB_CONFLICT : rc;
}
