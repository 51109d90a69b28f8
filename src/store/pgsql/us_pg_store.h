/*
 * us_pg_store.h - what the PostgreSQL backend (us_pg_store.c) tells beyond
 * the store interface, for tests and benchmarks.
 */
#ifndef US_PG_STORE_H
#define US_PG_STORE_H

#include "us_store.h"

/* This process's session reads (SESSION_GET) so far, and the statements
 * they went in (several concurrent reads share one): db is a PostgreSQL
 * store's connection. */
void us_pg_session_reads(const us_db *db, unsigned long *statements, unsigned long *reads);

#endif
