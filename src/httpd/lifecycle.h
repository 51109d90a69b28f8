/*
 * lifecycle.h - what the startup (lifecycle.c), the children
 * (children.c), the parent's sweep (sweep.c) and the node registry
 * (node_registry.c) share.
 */
#ifndef US_LIFECYCLE_H
#define US_LIFECYCLE_H

#include "us_module.h"

/* A logger for server s, in p, whose level follows the server's LogLevel:
 * the core, store and storage log through it into httpd's error log, with
 * each message's own number (us_log.h). */
const us_logger *us_error_log_for(apr_pool_t *p, server_rec *s);

/* Which store a server names: servers with one key share its connections,
 * workers and sweep. */
const char *us_store_key(apr_pool_t *p, const us_srv_conf *c);

/* The store's files belong to the children's user (when we are root). */
void us_give_store_to_user(apr_pool_t *p, const us_store_cfg *cfg);

/* UploadSessionNodeName, or the host name. */
const char *us_node_name_of(apr_pool_t *p, const us_srv_conf *c);

/* This httpd parent's identity in the registry, kept across restarts. */
const char *us_node_instance(server_rec *s);

/* Claims this node's name in the store's registry (a store that keeps
 * none: nothing to do). A live holder elsewhere is US_DB_CONFLICT with
 * *err saying so. */
us_db_rc us_node_claim_name(apr_pool_t *p, server_rec *s, us_srv_conf *c, const char **err);

#endif
