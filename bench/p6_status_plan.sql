-- The status statement's plans on a p6 side's database (p6_pg_cpu.py
-- --explain bench/p6_status_plan.sql; psql variable sid: the status leg's
-- session): prepared as the apr_dbd driver prepares SESSION_GET (varchar
-- for %s, bigint for %lld), its custom plans, then the generic one.
PREPARE s (bigint, varchar, varchar) AS
SELECT id, workspace, user_id, given_name, family_name, write_mode, parallel,
 CASE WHEN status = 'OPEN' AND expires_at <=
 ((extract(epoch FROM statement_timestamp()) * 1000000)::bigint /* $1 */)
 THEN 'EXPIRED' ELSE status END, created_at, expires_at, uploaded_files,
 finished_files, failed_files, direct FROM us_sessions
 WHERE workspace = $2 AND id = $3 AND status <> 'ABORTED';
SELECT count(*) AS sessions, (SELECT count(*) FROM us_sessions WHERE workspace = 'p6-status') AS in_ws,
 (SELECT reltuples FROM pg_class WHERE relname = 'us_sessions') AS reltuples FROM us_sessions;
SELECT indexrelid::regclass AS index FROM pg_index WHERE indrelid = 'us_sessions'::regclass;
EXPLAIN (ANALYZE, BUFFERS, COSTS) EXECUTE s(0, 'p6-status', :'sid');
EXECUTE s(0, 'p6-status', :'sid') \g /dev/null
EXECUTE s(0, 'p6-status', :'sid') \g /dev/null
EXECUTE s(0, 'p6-status', :'sid') \g /dev/null
EXECUTE s(0, 'p6-status', :'sid') \g /dev/null
EXECUTE s(0, 'p6-status', :'sid') \g /dev/null
EXPLAIN (ANALYZE, BUFFERS, COSTS) EXECUTE s(0, 'p6-status', :'sid');
SELECT name, generic_plans, custom_plans FROM pg_prepared_statements;
SET plan_cache_mode = force_custom_plan;
EXPLAIN (ANALYZE, BUFFERS, COSTS) EXECUTE s(0, 'p6-status', :'sid');
