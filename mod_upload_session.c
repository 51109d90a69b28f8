/*
 * mod_upload_session.c - the module record and hook registration. The
 * per-server configuration and its directives are in src/httpd/config.c,
 * the lifecycle hooks in src/httpd/lifecycle.c (configuration checks,
 * start-up), src/httpd/children.c and src/httpd/sweep.c (the expiry
 * sweep), the request hooks in
 * src/httpd/dispatch.c; everything that does not need httpd in the other
 * src/ folders.
 */
#include "src/httpd/hooks.h"

#include <http_config.h>
#include <http_request.h>
#include <mpm_common.h>
#include <mod_status.h>

static void register_hooks(apr_pool_t *p)
{
    (void)p;
    ap_hook_pre_config(us_pre_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_check_config(us_check_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_post_config(us_post_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_child_init(us_child_init, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_monitor(us_monitor, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_child_status(us_status_child_status, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_pre_translate_name(us_pre_translate_name, NULL, NULL, APR_HOOK_FIRST);
    ap_hook_map_to_storage(us_map_to_storage, NULL, NULL, APR_HOOK_FIRST);
    ap_hook_handler(us_handler, NULL, NULL, APR_HOOK_FIRST);
    ap_hook_handler(us_status_handler, NULL, NULL, APR_HOOK_MIDDLE);
    /* a section in mod_status's page when mod_status is loaded */
    APR_OPTIONAL_HOOK(ap, status_hook, us_status_hook, NULL, NULL, APR_HOOK_MIDDLE);
}

AP_DECLARE_MODULE(upload_session) = {
    STANDARD20_MODULE_STUFF,
    NULL,               /* per-directory config */
    NULL,
    us_srv_conf_create, /* per-server config */
    us_srv_conf_merge,
    us_directives,
    register_hooks,
    AP_MODULE_FLAG_NONE
};
