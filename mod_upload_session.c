/*
 * mod_upload_session.c - module record, configuration directives and hook
 * registration. Request handling lives in src/httpd/ (dispatch.c, then one
 * file per endpoint group), everything that does not need httpd in the
 * other src/ folders.
 *
 * Lifecycle:
 *   pre_config    apr_dbd_init
 *   check_config  validate each enabled server: store driver, key file,
 *                 URLs (runs for `apachectl configtest` too)
 *   post_config   (parent, usually root) create directories, migrate the
 *                 schema, create the signing secret, hand files to User
 *   child_init    open a connection pool per store
 *   pre_translate_name  JSON 404 for an encoded '/' or NUL in an API path
 *   handler       the API
 */
#include "src/httpd/us_module.h"
#include "src/httpd/us_upload.h"
#include "us_ingest.h"

#include <http_log.h>
#include <http_protocol.h>
#include <http_request.h>
#include <ap_mpm.h>
#include <mpm_common.h>
#include <http_core.h>
#include <http_main.h>
#include <unixd.h>
#include <apr_file_info.h>
#include <apr_hash.h>
#include <apr_strings.h>

#include <errno.h>
#include <malloc.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>



/* ---- configuration ---------------------------------------------------------- */

static void *create_srv_conf(apr_pool_t *p, server_rec *s)
{
    us_srv_conf *c = apr_pcalloc(p, sizeof(*c));
    (void)s;
    c->enabled = -1;
    c->max_open = -1;
    c->max_lifetime = -1;
    c->max_file_size = -1;
    c->ingest_threads = -1;
    c->sweep_interval = -1;
    c->busy_timeout = -1;
    return c;
}

#define MERGE(f, unset) m->f = (add->f != (unset)) ? add->f : base->f

static void *merge_srv_conf(apr_pool_t *p, void *basev, void *addv)
{
    us_srv_conf *base = basev, *add = addv, *m = apr_pcalloc(p, sizeof(*m));
    MERGE(enabled, -1);
    MERGE(store_driver, NULL);
    MERGE(store_params, NULL);
    MERGE(key_file, NULL);
    MERGE(public_url, NULL);
    MERGE(data_dir, NULL);
    MERGE(secret_file, NULL);
    MERGE(doc_url, NULL);
    MERGE(max_open, -1);
    MERGE(max_lifetime, -1);
    MERGE(max_file_size, -1);
    MERGE(ingest_threads, -1);
    MERGE(sweep_interval, -1);
    MERGE(busy_timeout, -1);
    return m;
}

static us_srv_conf *srv_conf(server_rec *s)
{
    return ap_get_module_config(s->module_config, &upload_session_module);
}

static int enabled(const us_srv_conf *c)
{
    return c->enabled == 1;
}

static const char *set_flag(cmd_parms *cmd, void *d, int on)
{
    (void)d;
    srv_conf(cmd->server)->enabled = on ? 1 : 0;
    return NULL;
}

static const char *set_store(cmd_parms *cmd, void *d, const char *driver,
                             const char *params)
{
    us_srv_conf *c = srv_conf(cmd->server);
    (void)d;
    if (!*driver || !*params)
        return "UploadSessionStore: expects a driver name and its parameters, "
               "e.g. UploadSessionStore sqlite3 /var/lib/upload_session/store.db";
    c->store_driver = driver;
    if (us_store_params_are_path(driver)) {
        /* relative paths are relative to ServerRoot, like other httpd files */
        c->store_params = ap_server_root_relative(cmd->pool, params);
        if (!c->store_params)
            return apr_pstrcat(cmd->pool, "UploadSessionStore: invalid path ", params, NULL);
    }
    else {
        c->store_params = params;
    }
    return NULL;
}

/* Directives whose argument is a file path (offset of the field in conf) */
static const char *set_path(cmd_parms *cmd, void *d, const char *arg)
{
    us_srv_conf *c = srv_conf(cmd->server);
    const char *path = ap_server_root_relative(cmd->pool, arg);
    (void)d;
    if (!path || !*arg)
        return apr_pstrcat(cmd->pool, cmd->cmd->name, ": invalid path '", arg, "'", NULL);
    *(const char **)((char *)c + (size_t)cmd->info) = path;
    return NULL;
}

static const char *check_url(cmd_parms *cmd, const char *arg, const char **out)
{
    apr_uri_t u;
    if (apr_uri_parse(cmd->pool, arg, &u) != APR_SUCCESS || !u.scheme || !u.hostname ||
        (strcasecmp(u.scheme, "http") != 0 && strcasecmp(u.scheme, "https") != 0) ||
        u.query || u.fragment)
        return apr_pstrcat(cmd->pool, cmd->cmd->name,
                           ": expects an absolute http:// or https:// URL without "
                           "query or fragment, not '", arg, "'", NULL);
    char *url = apr_pstrdup(cmd->pool, arg);
    size_t n = strlen(url);
    while (n > 0 && url[n - 1] == '/')
        url[--n] = '\0';
    *out = url;
    return NULL;
}

static const char *set_public_url(cmd_parms *cmd, void *d, const char *arg)
{
    (void)d;
    return check_url(cmd, arg, &srv_conf(cmd->server)->public_url);
}

static const char *set_doc_url(cmd_parms *cmd, void *d, const char *arg)
{
    (void)d;
    return check_url(cmd, arg, &srv_conf(cmd->server)->doc_url);
}

/* Positive integer directives, bounded by max (offset of the field in info) */
static const char *set_positive(cmd_parms *cmd, const char *arg, long max, int *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(arg, &end, 10);
    if (errno || !*arg || *end || v < 1 || v > max)
        return apr_psprintf(cmd->pool, "%s: expects a whole number from 1 to %ld, not '%s'",
                            cmd->cmd->name, max, arg);
    *out = (int)v;
    return NULL;
}

static const char *set_max_open(cmd_parms *cmd, void *d, const char *arg)
{
    (void)d;
    return set_positive(cmd, arg, 1000000, &srv_conf(cmd->server)->max_open);
}

static const char *set_max_lifetime(cmd_parms *cmd, void *d, const char *arg)
{
    (void)d;
    /* the API accepts at most 86400 s per session; a larger cap means nothing */
    return set_positive(cmd, arg, US_DEFAULT_MAX_LIFETIME, &srv_conf(cmd->server)->max_lifetime);
}

static const char *set_max_file_size(cmd_parms *cmd, void *d, const char *arg)
{
    char *end = NULL;
    apr_off_t v = 0;
    (void)d;
    /* bytes, or with a K/M/G suffix (binary units) */
    if (apr_strtoff(&v, arg, &end, 10) != APR_SUCCESS || v < 1 || end == arg)
        v = -1;
    else if (*end && !end[1] && strchr("kKmMgG", *end))
        v <<= (*end == 'k' || *end == 'K') ? 10 : (*end == 'm' || *end == 'M') ? 20 : 30;
    else if (*end)
        v = -1;
    if (v < 1 || v > (apr_off_t)1 << 50)
        return apr_psprintf(cmd->pool, "%s: expects a size in bytes (optionally with K, M or G), "
                            "not '%s'", cmd->cmd->name, arg);
    srv_conf(cmd->server)->max_file_size = (long long)v;
    return NULL;
}

static const char *set_ingest_threads(cmd_parms *cmd, void *d, const char *arg)
{
    (void)d;
    return set_positive(cmd, arg, 64, &srv_conf(cmd->server)->ingest_threads);
}

static const char *set_sweep_interval(cmd_parms *cmd, void *d, const char *arg)
{
    (void)d;
    return set_positive(cmd, arg, 86400, &srv_conf(cmd->server)->sweep_interval);
}

static const char *set_busy_timeout(cmd_parms *cmd, void *d, const char *arg)
{
    (void)d;
    return set_positive(cmd, arg, 60000, &srv_conf(cmd->server)->busy_timeout);
}

static const command_rec us_cmds[] = {
    AP_INIT_FLAG("UploadSession", set_flag, NULL, RSRC_CONF,
                 "On to serve the upload sessions API in this server"),
    AP_INIT_TAKE2("UploadSessionStore", set_store, NULL, RSRC_CONF,
                  "apr_dbd driver and parameters, e.g. sqlite3 /path/store.db"),
    AP_INIT_TAKE1("UploadSessionKeyFile", set_path,
                  (void *)APR_OFFSETOF(us_srv_conf, key_file), RSRC_CONF,
                  "file of hashed API keys (see us-keygen)"),
    AP_INIT_TAKE1("UploadSessionPublicURL", set_public_url, NULL, RSRC_CONF,
                  "the base URL clients reach this server at (default: from the request)"),
    AP_INIT_TAKE1("UploadSessionDocumentationURL", set_doc_url, NULL, RSRC_CONF,
                  "URL returned as documentation_url"),
    AP_INIT_TAKE1("UploadSessionDataDir", set_path,
                  (void *)APR_OFFSETOF(us_srv_conf, data_dir), RSRC_CONF,
                  "directory for uploaded files (default: beside the SQLite store)"),
    AP_INIT_TAKE1("UploadSessionSecretFile", set_path,
                  (void *)APR_OFFSETOF(us_srv_conf, secret_file), RSRC_CONF,
                  "file holding the upload-policy signing secret (created if absent)"),
    AP_INIT_TAKE1("UploadSessionMaxOpenSessions", set_max_open, NULL, RSRC_CONF,
                  "OPEN sessions a user may have at once (default 10)"),
    AP_INIT_TAKE1("UploadSessionMaxLifetime", set_max_lifetime, NULL, RSRC_CONF,
                  "maximum session lifetime in seconds (default 86400)"),
    AP_INIT_TAKE1("UploadSessionMaxFileSize", set_max_file_size, NULL, RSRC_CONF,
                  "largest file one upload may carry, e.g. 5G (default)"),
    AP_INIT_TAKE1("UploadSessionBusyTimeout", set_busy_timeout, NULL, RSRC_CONF,
                  "ms an SQLite statement waits for another process's lock (default 1000)"),
    AP_INIT_TAKE1("UploadSessionIngestThreads", set_ingest_threads, NULL, RSRC_CONF,
                  "ingestion worker threads per child process (default 1)"),
    AP_INIT_TAKE1("UploadSessionSweepInterval", set_sweep_interval, NULL, RSRC_CONF,
                  "seconds between expiry sweeps in the parent (default 10; the "
                  "parent's monitor runs about every 10 s)"),
    { NULL }
};

/* ---- startup -------------------------------------------------------------- */

static int pre_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp)
{
    (void)plog;
    (void)ptemp;
    apr_dbd_init(pconf);
    return OK;
}

/* Fills defaults that depend on other directives. */
static void apply_defaults(apr_pool_t *p, us_srv_conf *c)
{
    const char *dir = us_store_home(c->store_cfg, p);
    if (c->max_open < 0)
        c->max_open = US_DEFAULT_MAX_OPEN;
    if (c->max_lifetime < 0)
        c->max_lifetime = US_DEFAULT_MAX_LIFETIME;
    if (c->max_file_size < 0)
        c->max_file_size = US_DEFAULT_MAX_FILE_SIZE;
    if (c->ingest_threads < 0)
        c->ingest_threads = US_DEFAULT_INGEST_THREADS;
    if (c->sweep_interval < 0)
        c->sweep_interval = US_DEFAULT_SWEEP_INTERVAL;
    if (c->busy_timeout < 0)
        c->busy_timeout = US_DEFAULT_BUSY_TIMEOUT_MS;
    if (!c->data_dir && dir)
        c->data_dir = apr_pstrcat(p, dir, "data", NULL);
    if (!c->secret_file && dir)
        c->secret_file = apr_pstrcat(p, dir, "upload_session.secret", NULL);
}

/* Validates one enabled server; returns an error message or NULL. */
static const char *check_server(apr_pool_t *pconf, server_rec *s, us_srv_conf *c)
{
    char err[512];
    const char *derr = NULL;

    if (!c->store_driver)
        return "UploadSession On needs UploadSessionStore (e.g. sqlite3 /var/lib/upload_session/store.db)";
    if (!c->key_file)
        return "UploadSession On needs UploadSessionKeyFile";
    if (us_store_configure(pconf, c->store_driver, c->store_params, &c->store_cfg, &derr) !=
        US_DB_OK)
        return apr_pstrcat(pconf, "UploadSessionStore: ", derr, NULL);
    apply_defaults(pconf, c);
    if (!c->data_dir)
        return "UploadSessionDataDir is required when UploadSessionStore is not sqlite3";
    if (!c->secret_file)
        return "UploadSessionSecretFile is required when UploadSessionStore is not sqlite3";
    if (!us_keyring_load(pconf, c->key_file, &c->keys, err, sizeof(err)))
        return apr_pstrcat(pconf, "UploadSessionKeyFile ", c->key_file, ": ", err, NULL);
    (void)s;
    return NULL;
}

static int check_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
                        server_rec *s)
{
    int busy = 0;
    us_srv_conf *c;
    (void)plog;
    (void)ptemp;
    for (server_rec *v = s; v; v = v->next) {
        c = srv_conf(v);
        if (!enabled(c))
            continue;
        const char *why = check_server(pconf, v, c);
        /* the busy timeout is process-wide: the smallest configured one wins */
        if (!why && (busy == 0 || c->busy_timeout < busy))
            busy = c->busy_timeout;
        if (why) {
            ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_EMERG, 0, NULL,
                         USLOGNO(0001) "mod_upload_session (%s:%d): %s",
                         v->server_hostname ? v->server_hostname : "main server",
                         v->port, why);
            return HTTP_INTERNAL_SERVER_ERROR;
        }
    }
    for (server_rec *v = s; busy && v; v = v->next)
        if (enabled(c = srv_conf(v)))
            us_store_set_lock_timeout(c->store_cfg, busy);
    return OK;
}

/* Makes path (a directory) exist and belong to the children's user when we
 * are root; fails when it exists and they could not write to it. */
static const char *prepare_dir(apr_pool_t *p, const char *directive, const char *path)
{
    struct stat st;
    apr_status_t rv = apr_dir_make_recursive(path, APR_FPROT_OS_DEFAULT & ~APR_FPROT_WWRITE, p);
    if (rv != APR_SUCCESS)
        return apr_psprintf(p, "%s: cannot create directory %s: %pm", directive, path, &rv);
    if (stat(path, &st) != 0)
        return apr_psprintf(p, "%s: cannot stat %s", directive, path);
    if (geteuid() == 0 && st.st_uid == 0 && ap_unixd_config.user_id != 0) {
        /* a directory we (root) own: hand it to User so WAL files and uploads work */
        if (chown(path, ap_unixd_config.user_id, ap_unixd_config.group_id) != 0)
            return apr_psprintf(p, "%s: cannot chown %s to the User of httpd", directive, path);
        chmod(path, 0750);
    }
    else if (geteuid() == 0 && st.st_uid != ap_unixd_config.user_id &&
             !(st.st_mode & S_IWOTH) &&
             !(st.st_gid == ap_unixd_config.group_id && (st.st_mode & S_IWGRP))) {
        return apr_psprintf(p, "%s: directory %s must be writable by httpd's User (uid %ld)",
                            directive, path, (long)ap_unixd_config.user_id);
    }
    return NULL;
}

/* Hands a file we (root) created to the children's user. */
static void give_to_user(const char *path)
{
    struct stat st;
    if (geteuid() == 0 && stat(path, &st) == 0 && st.st_uid == 0)
        if (chown(path, ap_unixd_config.user_id, ap_unixd_config.group_id) != 0)
            return; /* reported when a child fails to open it */
}

/* Loads the signing secret, creating it (0600) on first start. */
static const char *load_secret(apr_pool_t *p, us_srv_conf *c)
{
    apr_file_t *f;
    apr_size_t n = US_SECRET_LEN;
    apr_status_t rv = apr_file_open(&f, c->secret_file, APR_FOPEN_READ | APR_FOPEN_BINARY,
                                    APR_OS_DEFAULT, p);
    if (APR_STATUS_IS_ENOENT(rv)) {
        unsigned char fresh[US_SECRET_LEN];
        if (apr_generate_random_bytes(fresh, sizeof(fresh)) != APR_SUCCESS)
            return "UploadSessionSecretFile: no random bytes for a new secret";
        rv = apr_file_open(&f, c->secret_file,
                           APR_FOPEN_WRITE | APR_FOPEN_CREATE | APR_FOPEN_EXCL | APR_FOPEN_BINARY,
                           APR_FPROT_UREAD | APR_FPROT_UWRITE, p);
        if (rv == APR_SUCCESS) {
            rv = apr_file_write_full(f, fresh, sizeof(fresh), NULL);
            if (rv == APR_SUCCESS)
                rv = apr_file_sync(f);
            apr_file_close(f);
        }
        if (rv != APR_SUCCESS)
            return apr_psprintf(p, "UploadSessionSecretFile: cannot create %s: %pm",
                                c->secret_file, &rv);
        give_to_user(c->secret_file);
        rv = apr_file_open(&f, c->secret_file, APR_FOPEN_READ | APR_FOPEN_BINARY,
                           APR_OS_DEFAULT, p);
    }
    if (rv == APR_SUCCESS) {
        rv = apr_file_read_full(f, c->secret, US_SECRET_LEN, &n);
        apr_file_close(f);
    }
    if (rv != APR_SUCCESS || n != US_SECRET_LEN)
        return apr_psprintf(p, "UploadSessionSecretFile: cannot read %d bytes from %s",
                            US_SECRET_LEN, c->secret_file);
    return NULL;
}

/* The store's files belong to the children's user. */
static void give_store_to_user(apr_pool_t *p, const us_store_cfg *cfg)
{
    const apr_array_header_t *paths = us_store_user_files(cfg, p);
    for (int i = 0; i < paths->nelts; i++)
        give_to_user(APR_ARRAY_IDX(paths, i, const char *));
}

static const char *setup_server(apr_pool_t *p, server_rec *s, us_srv_conf *c)
{
    const char *err = NULL;
    const char *home = us_store_home(c->store_cfg, p);

    if (home && (err = prepare_dir(p, "UploadSessionStore", home)))
        return err;
    if ((err = prepare_dir(p, "UploadSessionDataDir", c->data_dir)))
        return err;
    if (us_store_migrate(c->store_cfg, p, &err) != US_DB_OK)
        return apr_pstrcat(p, "UploadSessionStore: ", err, NULL);
    us_upload_sweep_temp(p, s, c->data_dir);
    if (us_store_prepare_files(c->store_cfg, p, &err) != US_DB_OK)
        return apr_pstrcat(p, "UploadSessionStore: ", err, NULL);
    give_store_to_user(p, c->store_cfg);
    return load_secret(p, c);
}

static int post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
                       server_rec *s)
{
    (void)plog;
    /* the first start runs the configuration twice; do the work once */
    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG)
        return OK;
    for (server_rec *v = s; v; v = v->next) {
        us_srv_conf *c = srv_conf(v);
        if (!enabled(c))
            continue;
        const char *err = setup_server(ptemp, v, c);
        if (err) {
            ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_EMERG, 0, NULL,
                         USLOGNO(0002) "mod_upload_session: %s", err);
            return HTTP_INTERNAL_SERVER_ERROR;
        }
        (void)pconf;
    }
    return OK;
}

/* ---- children ------------------------------------------------------------- */

/* Ingest workers log through httpd's error log. */
static void ingest_log(void *baton, us_log_level level, const char *msg)
{
    static const int LEVELS[] = { APLOG_ERR, APLOG_WARNING, APLOG_INFO, APLOG_DEBUG };
    ap_log_error(APLOG_MARK, LEVELS[level], 0, baton, USLOGNO(0004) "%s", msg);
}

/* Runs before pchild's sub-pools go: the workers still use their config. */
static apr_status_t stop_ingest(void *data)
{
    us_ingest_stop(data);
    return APR_SUCCESS;
}

static void start_ingest(apr_pool_t *pchild, server_rec *s, us_srv_conf *c)
{
    us_ingest_config *cfg = apr_pcalloc(pchild, sizeof(*cfg));
    us_ingester *ing = NULL;
    char host[256] = "localhost";

    apr_gethostname(host, sizeof(host), pchild);
    cfg->store = c->store_cfg;
    cfg->data_dir = c->data_dir;
    cfg->threads = c->ingest_threads;
    cfg->batch = 256;
    cfg->poll = apr_time_from_msec(250);
    cfg->lease = apr_time_from_sec(60);
    cfg->host = apr_pstrdup(pchild, host);
    cfg->log = ingest_log;
    cfg->log_baton = s;
    apr_status_t rv = us_ingest_start(pchild, cfg, &ing);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s, USLOGNO(0005) "cannot start ingest workers");
        return;
    }
    apr_pool_pre_cleanup_register(pchild, ing, stop_ingest);
}

/* glibc serves an allocation above its mmap threshold with its own mapping,
 * returned to the system when freed - but raises the threshold to the size
 * of every such block freed, so later ones come from the worker threads'
 * arenas and stay resident there: twenty 1 MB `meta` uploads (jansson's
 * and SQLite's copies) left a child 99 MiB larger. A fixed threshold (at
 * glibc's default) turns that raising off. */
static void fix_mmap_threshold(server_rec *s)
{
#ifdef M_MMAP_THRESHOLD
    if (mallopt(M_MMAP_THRESHOLD, US_MMAP_THRESHOLD) != 1)
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, USLOGNO(0010)
                     "cannot fix malloc's mmap threshold: large requests may stay resident");
#else
    (void)s;
#endif
}

static void child_init(apr_pool_t *pchild, server_rec *s)
{
    apr_hash_t *stores = apr_hash_make(pchild);
    int threads = US_DEFAULT_MAX_CONNS;

    fix_mmap_threshold(s);

    ap_mpm_query(AP_MPMQ_MAX_THREADS, &threads);
    if (threads < 1)
        threads = 1;
    for (server_rec *v = s; v; v = v->next) {
        us_srv_conf *c = srv_conf(v);
        if (!enabled(c) || !c->store_cfg)
            continue;
        /* virtual hosts naming the same store share one pool of connections */
        const char *k = apr_pstrcat(pchild, c->store_driver, "\n", c->store_params, NULL);
        c->store = apr_hash_get(stores, k, APR_HASH_KEY_STRING);
        if (c->store)
            continue;
        apr_status_t rv = us_store_create(pchild, c->store_cfg, threads, &c->store);
        if (rv != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s,
                         USLOGNO(0003) "cannot create the connection pool for %s",
                         c->store_params);
            c->store = NULL;
            continue;
        }
        apr_hash_set(stores, k, APR_HASH_KEY_STRING, c->store);
        start_ingest(pchild, v, c); /* one set of workers per store */
    }
}

/* ---- expiry sweep in the parent ------------------------------------------------ */

typedef struct {
    us_db *db;
    apr_time_t last;
} sweep_state;

/* Lives in a sub-pool of pconf: a restart clears it and the hash with it. */
static apr_pool_t *sweep_pool;
static apr_hash_t *sweep_states;

static apr_status_t sweep_reset(void *data)
{
    (void)data;
    sweep_pool = NULL;
    sweep_states = NULL;
    return APR_SUCCESS;
}

static void sweep_store(server_rec *s, us_srv_conf *c, sweep_state *st)
{
    apr_time_t now = apr_time_now();
    const char *err = NULL;
    apr_pool_t *tmp;
    int n = 0;

    if (now - st->last < apr_time_from_sec(c->sweep_interval))
        return;
    st->last = now;
    if (!st->db) {
        /* opened lazily here, in the parent, never before a fork */
        if (us_db_open(sweep_pool, c->store_cfg, &st->db, &err) != US_DB_OK) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, USLOGNO(0006) "expiry sweep: %s", err);
            st->db = NULL;
            return;
        }
        /* we are root: files the store creates now must stay usable by User */
        give_store_to_user(sweep_pool, c->store_cfg);
    }
    apr_pool_create(&tmp, sweep_pool);
    us_db_rc rc = us_sessions_expire(st->db, tmp, now, &n);
    if (rc != US_DB_OK)
        ap_log_error(APLOG_MARK, rc == US_DB_BUSY ? APLOG_INFO : APLOG_WARNING, 0, s,
                     USLOGNO(0007) "expiry sweep: %s", us_db_error(st->db));
    else if (n > 0)
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, s, USLOGNO(0008)
                     "expiry sweep: %d session(s) expired, ingestion queued", n);
    apr_pool_destroy(tmp);
}

static int monitor(apr_pool_t *p, server_rec *s)
{
    if (!sweep_pool) {
        apr_pool_create(&sweep_pool, p);
        apr_pool_tag(sweep_pool, "us_sweep");
        sweep_states = apr_hash_make(sweep_pool);
        apr_pool_cleanup_register(sweep_pool, NULL, sweep_reset, apr_pool_cleanup_null);
    }
    for (server_rec *v = s; v; v = v->next) {
        us_srv_conf *c = srv_conf(v);
        if (!enabled(c) || !c->store_cfg)
            continue;
        const char *k = apr_pstrcat(sweep_pool, c->store_driver, "\n", c->store_params, NULL);
        sweep_state *st = apr_hash_get(sweep_states, k, APR_HASH_KEY_STRING);
        if (!st) {
            st = apr_pcalloc(sweep_pool, sizeof(*st));
            apr_hash_set(sweep_states, k, APR_HASH_KEY_STRING, st);
        }
        sweep_store(v, c, st);
    }
    return DECLINED;
}

/* ---- requests ------------------------------------------------------------- */

/* API requests map to no file: skip the filesystem walk entirely. */
static int map_to_storage(request_rec *r)
{
    us_srv_conf *c = srv_conf(r->server);
    if (!enabled(c) || strncmp(r->uri, US_API_PREFIX, sizeof(US_API_PREFIX) - 1) != 0)
        return DECLINED;
    return OK;
}

/* Set in r->request_config for an API path the core would refuse. */
static const char REFUSED_PATH[] = "refused";

/* The core answers an encoded '/' (AllowEncodedSlashes Off) or NUL in the
 * path with its HTML 404 page while decoding the path, which happens right
 * after this hook. Under the API prefix that answer is the contract's JSON
 * 404: the path is marked, left undecoded (DONE) and the handler answers. */
static int pre_translate_name(request_rec *r)
{
    us_srv_conf *c = srv_conf(r->server);
    const core_dir_config *d = ap_get_core_module_config(r->per_dir_config);

    if (!enabled(c) || r->proxyreq || !r->parsed_uri.path ||
        !us_raw_path_is_api(r->parsed_uri.path) ||
        !us_path_has_refused_escape(r->parsed_uri.path, !d->allow_encoded_slashes))
        return DECLINED;
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, USLOGNO(0009)
                  "encoded '/' or NUL in the API path (%s): JSON 404", r->unparsed_uri);
    ap_set_module_config(r->request_config, &upload_session_module, (void *)REFUSED_PATH);
    return DONE;
}

static int handler(request_rec *r)
{
    us_srv_conf *c = srv_conf(r->server);
    us_route route;

    if (!enabled(c))
        return DECLINED;
    if (ap_get_module_config(r->request_config, &upload_session_module) == REFUSED_PATH) {
        memset(&route, 0, sizeof(route));
        route.id = US_ROUTE_NOT_FOUND;
    }
    else {
        us_route_match(r->pool, r->uri, r->method, &route);
    }
    if (route.id == US_ROUTE_NONE)
        return DECLINED;
    return us_api_handle(r, c, &route);
}

static void register_hooks(apr_pool_t *p)
{
    (void)p;
    ap_hook_pre_config(pre_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_check_config(check_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_post_config(post_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_child_init(child_init, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_monitor(monitor, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_pre_translate_name(pre_translate_name, NULL, NULL, APR_HOOK_FIRST);
    ap_hook_map_to_storage(map_to_storage, NULL, NULL, APR_HOOK_FIRST);
    ap_hook_handler(handler, NULL, NULL, APR_HOOK_FIRST);
}

AP_DECLARE_MODULE(upload_session) = {
    STANDARD20_MODULE_STUFF,
    NULL,            /* per-directory config */
    NULL,
    create_srv_conf, /* per-server config */
    merge_srv_conf,
    us_cmds,
    register_hooks,
    AP_MODULE_FLAG_NONE
};
