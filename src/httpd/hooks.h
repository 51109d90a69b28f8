/*
 * hooks.h - what mod_upload_session.c puts in the module record and
 * registers: the per-server configuration and its directives (config.c),
 * the lifecycle hooks (lifecycle.c, children.c, sweep.c) and the request
 * hooks (dispatch.c).
 */
#ifndef US_HOOKS_H
#define US_HOOKS_H

#include "us_module.h"

#include <ap_mpm.h>

/* config.c */
void *us_srv_conf_create(apr_pool_t *p, server_rec *s);
void *us_srv_conf_merge(apr_pool_t *p, void *basev, void *addv);
extern const command_rec us_directives[];

/* lifecycle.c */
int us_pre_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp);
int us_check_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp, server_rec *s);
int us_post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp, server_rec *s);
/* children.c */
void us_child_init(apr_pool_t *pchild, server_rec *s);
/* sweep.c */
int us_monitor(apr_pool_t *p, server_rec *s);

/* dispatch.c */
int us_pre_translate_name(request_rec *r);
int us_map_to_storage(request_rec *r);
int us_handler(request_rec *r);

/* us_status.c: SetHandler upload-session-metrics / upload-session-status,
 * and mod_status's section */
int us_status_handler(request_rec *r);
int us_status_hook(request_rec *r, int flags);
/* the parent saw a child start or exit: an exited one's gauges go */
void us_status_child_status(server_rec *s, pid_t pid, ap_generation_t gen, int slot,
                            mpm_child_status state);

#endif
