/*
 * lifecycle.c - the module's startup in the parent:
 *   pre_config    apr_dbd_init
 *   check_config  validate each enabled server: store driver, key file,
 *                 URLs, webhook secret, no two stores in one place for
 *                 files, the existing directories writable by User (runs
 *                 for `apachectl configtest` too: it changes nothing on disk)
 *   post_config   (parent, usually root) create directories, migrate the
 *                 schema, record the webhook URLs in the store, claim the
 *                 node's name (node_registry.c), create the signing secret,
 *                 hand files to User; the counters' shared memory (us_status.c)
 * The rest of the module's life: child_init in children.c, the parent's
 * monitor (the expiry sweep, the node's heartbeat) in sweep.c.
 */
#include "hooks.h"
#include "lifecycle.h"
#include "us_fsync.h"
#include "us_ingest.h"
#include "us_uuid.h"
#include "us_version.h"
#include "us_webhook.h"
#include "us_webhook_send.h"

#include <http_core.h>
#include <http_log.h>
#include <ap_mpm.h>
#include <mpm_common.h>
#include <unixd.h>
#include <apr_file_info.h>
#include <apr_hash.h>
#include <apr_strings.h>

#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <malloc.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

APLOG_USE_MODULE(upload_session);

/* ---- startup -------------------------------------------------------------- */

int us_pre_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp)
{
    (void)plog;
    (void)ptemp;
    apr_dbd_init(pconf);
    return OK;
}

/* The core, store and storage log through this: httpd's error log, with the
 * message's own number (us_log.h). */
static void error_log_emit(void *baton, us_log_level level, apr_status_t status, int msgno,
                           const char *msg)
{
    static const int LEVELS[] = { APLOG_ERR, APLOG_WARNING, APLOG_INFO, APLOG_DEBUG };
    ap_log_error(APLOG_MARK, LEVELS[level], status, baton, "US%04d: %s", msgno, msg);
}

/* A logger for server s, in p, whose level follows the server's LogLevel. */
const us_logger *us_error_log_for(apr_pool_t *p, server_rec *s)
{
    us_logger *lg = apr_pcalloc(p, sizeof(*lg));
    int level = ap_get_server_module_loglevel(s, APLOG_MODULE_INDEX);
    lg->emit = error_log_emit;
    lg->baton = s;
    lg->max_level = level >= APLOG_DEBUG ? US_LOG_DEBUG
                  : level >= APLOG_INFO  ? US_LOG_INFO
                  : level >= APLOG_WARNING ? US_LOG_WARN : US_LOG_ERR;
    return lg;
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
    us_store_set_logger(c->store_cfg, us_error_log_for(pconf, s));
    us_srv_conf_defaults(pconf, c);
    if (!c->data_dir)
        return "UploadSessionDataDir is required with this UploadSessionStore: its default "
               "lies beside the store's files, and this store keeps none on this machine";
    if (!c->secret_file)
        return "UploadSessionSecretFile is required with this UploadSessionStore: its default "
               "lies beside the store's files, and this store keeps none on this machine";
    const char *params = c->storage_params;
    const char *part_memory =
        c->s3_part_memory > 0
            ? apr_psprintf(pconf, " part_memory=%" APR_INT64_T_FMT, (apr_int64_t)c->s3_part_memory)
            : "";
    if (strcmp(c->storage_name, "s3") == 0)
        params = apr_pstrcat(pconf, params, c->s3_region ? " region=" : "",
                             c->s3_region ? c->s3_region : "",
                             c->s3_credentials ? " credentials=" : "",
                             c->s3_credentials ? c->s3_credentials : "",
                             c->s3_prefix ? " prefix=" : "", c->s3_prefix ? c->s3_prefix : "",
                             part_memory, NULL);
    else if (c->s3_region || c->s3_credentials || c->s3_prefix || c->s3_direct ||
             c->s3_part_memory > 0)
        return "UploadSessionS3Region, UploadSessionS3CredentialsFile, UploadSessionS3Prefix, "
               "UploadSessionS3DirectUpload and UploadSessionS3PartMemory need "
               "UploadSessionStorage s3";
    if (us_storage_configure(pconf, c->storage_name, c->data_dir, params, &c->storage,
                             &derr) != APR_SUCCESS)
        return apr_pstrcat(pconf, "UploadSessionStorage: ", derr, NULL);
    long long most = us_storage_max_object_size(c->storage);
    if (most && c->max_file_size > most)
        return apr_psprintf(pconf, "UploadSessionMaxFileSize %" APR_INT64_T_FMT " is larger than "
                            "the largest file %s storage can hold (%" APR_INT64_T_FMT " bytes)",
                            (apr_int64_t)c->max_file_size, us_storage_name(c->storage),
                            (apr_int64_t)most);
    us_keyfile_sig sig;
    us_keyring *ring;
    /* stat before reading: a file changed meanwhile is re-read by the children */
    us_keyfile_sig_get(c->key_file, &sig, pconf);
    if (!us_keyring_load(pconf, c->key_file, &ring, err, sizeof(err)))
        return apr_pstrcat(pconf, "UploadSessionKeyFile ", c->key_file, ": ", err, NULL);
    if (c->webhooks && !c->webhook_secret_file)
        return "UploadSessionWebhook needs UploadSessionWebhookSecretFile (the secret its "
               "deliveries are signed with)";
    if (c->webhook_secret_file &&
        (derr = us_webhook_secret_read(pconf, c->webhook_secret_file, &c->webhook_secret,
                                       &c->webhook_secret_len)))
        return apr_pstrcat(pconf, "UploadSessionWebhookSecretFile ", derr, NULL);
    /* before any thread exists: curl_global_init is not thread-safe */
    if (c->webhooks && !us_webhook_global_init())
        return "UploadSessionWebhook: libcurl cannot be initialised";
    apr_status_t rv = us_keystore_create(pconf, c->key_file, ring, &sig,
                                         US_KEYFILE_CHECK_INTERVAL, us_error_log_for(pconf, s),
                                         &c->keys);
    if (rv != APR_SUCCESS)
        return apr_psprintf(pconf, "UploadSessionKeyFile %s: %pm", c->key_file, &rv);
    return NULL;
}

/* Which store a server names: servers with one key share its connections,
 * workers and sweep. */
const char *us_store_key(apr_pool_t *p, const us_srv_conf *c)
{
    return apr_pstrcat(p, c->store_driver, "\n", c->store_params, NULL);
}

static int same_text(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

static int same_list(const apr_array_header_t *a, const apr_array_header_t *b)
{
    int n = a ? a->nelts : 0;
    if (n != (b ? b->nelts : 0))
        return 0;
    for (int i = 0; i < n; i++)
        if (!same_text(APR_ARRAY_IDX(a, i, const char *), APR_ARRAY_IDX(b, i, const char *)))
            return 0;
    return 1;
}

/* The directive of c that differs from first's, where both name one store:
 * a store has one set of ingest workers, one webhook deliverer, one sweep
 * and one lock timeout per process, made from the first server naming it,
 * so another server's own value would be silently ignored. NULL: alike. */
static const char *store_setting_differs(const us_srv_conf *first, const us_srv_conf *c)
{
    if (!same_text(first->storage_name, c->storage_name) ||
        !same_text(first->storage_params, c->storage_params))
        return "UploadSessionStorage";
    if (!same_text(first->data_dir, c->data_dir))
        return "UploadSessionDataDir";
    if (!same_text(first->s3_region, c->s3_region))
        return "UploadSessionS3Region";
    if (!same_text(first->s3_credentials, c->s3_credentials))
        return "UploadSessionS3CredentialsFile";
    if (!same_text(first->s3_prefix, c->s3_prefix))
        return "UploadSessionS3Prefix";
    if (!same_text(first->node_name, c->node_name))
        return "UploadSessionNodeName";
    if (first->ingest_threads != c->ingest_threads)
        return "UploadSessionIngestThreads";
    if (first->ingest_lease != c->ingest_lease)
        return "UploadSessionIngestLease";
    if (first->refusal_pause != c->refusal_pause)
        return "UploadSessionIngestRefusalPause";
    if (first->max_files != c->max_files)
        return "UploadSessionMaxFilesPerSession";
    if (first->sweep_interval != c->sweep_interval)
        return "UploadSessionSweepInterval";
    if (first->busy_timeout != c->busy_timeout)
        return "UploadSessionBusyTimeout";
    if (!same_list(first->webhooks, c->webhooks))
        return "UploadSessionWebhook";
    if (!same_text(first->webhook_secret_file, c->webhook_secret_file))
        return "UploadSessionWebhookSecretFile";
    if (first->webhook_retry_for != c->webhook_retry_for)
        return "UploadSessionWebhookRetryFor";
    if (first->webhook_retention != c->webhook_retention)
        return "UploadSessionWebhookRetention";
    return NULL;
}

/* path without its trailing slashes (a store's home ends in one). */
static const char *dir_path(apr_pool_t *p, const char *path)
{
    apr_size_t len = strlen(path);
    while (len > 1 && path[len - 1] == '/')
        len--;
    return apr_pstrmemdup(p, path, len);
}

/* Another server, as messages name it: "the main server" or host:port. */
static const char *server_label(apr_pool_t *p, server_rec *main_s, server_rec *v)
{
    if (v == main_s)
        return "the main server";
    return apr_psprintf(p, "%s:%d", v->server_hostname ? v->server_hostname : "", v->port);
}

/* Servers naming one store must agree on its workers' settings; stores
 * holds the first server naming each store. */
static const char *check_same_store(apr_pool_t *pconf, apr_pool_t *ptemp, server_rec *main_s,
                                    server_rec *v, us_srv_conf *c, apr_hash_t *stores)
{
    const char *k = us_store_key(ptemp, c);
    server_rec *first = apr_hash_get(stores, k, APR_HASH_KEY_STRING);
    const char *d = first ? store_setting_differs(us_srv_conf_get(first), c) : NULL;
    if (!first)
        apr_hash_set(stores, k, APR_HASH_KEY_STRING, v);
    if (!d)
        return NULL;
    return apr_psprintf(pconf, "%s differs from that of %s, which names the same "
                        "UploadSessionStore: a store's workers, webhooks and sweep are one set, "
                        "made from the first server naming it; set %s alike in both (or once, "
                        "outside the virtual hosts)", d, server_label(ptemp, main_s, first), d);
}

/* The data directory's real path, or where it does not exist yet its
 * absolute path with ".", ".." and repeated slashes resolved. */
static const char *real_dir(apr_pool_t *p, const char *path)
{
    char buf[PATH_MAX];
    char *merged = NULL;
    if (realpath(path, buf))
        return apr_pstrdup(p, buf);
    if (apr_filepath_merge(&merged, NULL, path, APR_FILEPATH_NOTRELATIVE, p) != APR_SUCCESS)
        return path;
    return dir_path(p, merged);
}

/* Where c's store keeps its files, as a key ("posix", the real directory;
 * "s3", bucket and prefix), with its description in *what; NULL: neither. */
static const char *files_place(apr_pool_t *p, const us_srv_conf *c, const char **what)
{
    if (strcmp(c->storage_name, "posix") == 0) {
        const char *dir = real_dir(p, c->data_dir);
        *what = apr_pstrcat(p, "UploadSessionDataDir ", dir, NULL);
        return apr_pstrcat(p, "posix\n", dir, NULL);
    }
    if (strcmp(c->storage_name, "s3") != 0)
        return NULL;
    char *last = NULL;
    char *words = apr_pstrdup(p, c->storage_params);
    const char *bucket = apr_strtok(words, " ", &last) ? apr_strtok(NULL, " ", &last) : NULL;
    const char *pre = c->s3_prefix ? c->s3_prefix : "";
    apr_size_t n;
    while (*pre == '/')
        pre++;
    for (n = strlen(pre); n && pre[n - 1] == '/'; n--)
        ;
    pre = apr_pstrmemdup(p, pre, n);
    *what = apr_psprintf(p, "UploadSessionStorage s3 bucket %s with UploadSessionS3Prefix '%s'",
                         bucket ? bucket : "", pre);
    return apr_pstrcat(p, "s3\n", bucket ? bucket : "", "\n", pre, NULL);
}

/* Two stores must not keep their files in one place: each store's sweep
 * removes the files its own tables do not name, the other store's too.
 * places holds the first server using each place. */
static const char *check_files_apart(apr_pool_t *p, server_rec *main_s, server_rec *v,
                                     us_srv_conf *c, apr_hash_t *places)
{
    const char *what = NULL;
    const char *k = files_place(p, c, &what);
    server_rec *other = k ? apr_hash_get(places, k, APR_HASH_KEY_STRING) : NULL;
    if (k && !other)
        apr_hash_set(places, k, APR_HASH_KEY_STRING, v);
    if (!other || strcmp(us_store_key(p, us_srv_conf_get(other)), us_store_key(p, c)) == 0)
        return NULL;
    return apr_psprintf(p, "%s is also that of %s, which names another UploadSessionStore: "
                        "each store's sweep deletes the files its own store does not know, "
                        "the other store's too; give each store its own place for its files",
                        what, server_label(p, main_s, other));
}

static const char *check_existing_dirs(apr_pool_t *p, server_rec *s, us_srv_conf *c);

/* A KeepAliveTimeout not above the SDK's client's (US_CLIENT_KEEPALIVE_S)
 * is raised, here before the MPMs read it (the event MPM's keep-alive
 * queues are made in its post_config); us_post_config logs it. One set in
 * the virtual host itself is the operator's choice for it and is kept
 * (logged as a warning): a main server's may be Debian's stock line,
 * inherited by every virtual host that sets none. The raised one is marked
 * as the server's own: the MPMs keep a request's connection alive by its
 * name-based virtual host's timeout only when that host sets one, by the
 * first virtual host of its address and port otherwise, which may be
 * another server, without the module. */
static void raise_keepalive(server_rec *v, us_srv_conf *c)
{
    c->keepalive_was = c->keepalive_kept = -1;
    if (!v->keep_alive || v->keep_alive_timeout > apr_time_from_sec(US_CLIENT_KEEPALIVE_S))
        return;
    if (v->is_virtual && v->keep_alive_timeout_set) {
        c->keepalive_kept = v->keep_alive_timeout;
        return;
    }
    c->keepalive_was = v->keep_alive_timeout;
    v->keep_alive_timeout = apr_time_from_sec(US_KEEPALIVE_FLOOR_S);
    v->keep_alive_timeout_set = 1;
}

int us_check_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
                        server_rec *s)
{
    apr_hash_t *stores = apr_hash_make(ptemp), *places = apr_hash_make(ptemp);
    int busy = 0;
    us_srv_conf *c;
    (void)plog;
    for (server_rec *v = s; v; v = v->next) {
        c = us_srv_conf_get(v);
        if (!us_srv_enabled(c))
            continue;
        raise_keepalive(v, c);
        const char *why = check_server(pconf, v, c);
        if (!why)
            why = check_same_store(pconf, ptemp, s, v, c, stores);
        if (!why)
            why = check_files_apart(ptemp, s, v, c, places);
        if (!why)
            why = check_existing_dirs(ptemp, v, c);
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
        if (us_srv_enabled(c = us_srv_conf_get(v)))
            us_store_set_lock_timeout(c->store_cfg, busy);
    return OK;
}

/* Whether path is an existing directory (*exists) or missing; anything
 * else, a file on its way included, is an error naming directive. */
static const char *dir_state(apr_pool_t *p, const char *directive, const char *path,
                             int *exists)
{
    struct stat st;
    *exists = 0;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        *exists = 1;
        return NULL;
    }
    if (stat(path, &st) == 0 || errno == ENOTDIR)
        return apr_psprintf(p, "%s: %s exists and is not a directory (or lies under a file)",
                            directive, path);
    if (errno == ENOENT)
        return NULL;
    apr_status_t rv = APR_FROM_OS_ERROR(errno);
    return apr_psprintf(p, "%s: cannot stat directory %s: %pm", directive, path, &rv);
}

/* The levels of path that do not exist yet, innermost first. */
static apr_array_header_t *missing_levels(apr_pool_t *p, const char *path)
{
    apr_array_header_t *a = apr_array_make(p, 4, sizeof(const char *));
    char *cur = apr_pstrdup(p, path);
    struct stat st;
    while (*cur && stat(cur, &st) != 0 && errno == ENOENT) {
        APR_ARRAY_PUSH(a, const char *) = apr_pstrdup(p, cur);
        char *slash = strrchr(cur, '/');
        while (slash && slash > cur && slash[-1] == '/')
            slash--;
        if (!slash || slash == cur)
            break;
        *slash = '\0';
    }
    return a;
}

/* A directory this start made, handed to User so WAL files and uploads
 * work; lstat: a symlink put in its place meanwhile is left alone. */
static const char *give_dir_to_user(apr_pool_t *p, const char *directive, const char *dir)
{
    struct stat st;
    if (geteuid() != 0 || ap_unixd_config.user_id == 0)
        return NULL;
    if (lstat(dir, &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != 0)
        return NULL;
    if (chown(dir, ap_unixd_config.user_id, ap_unixd_config.group_id) != 0)
        return apr_psprintf(p, "%s: cannot chown %s to the User of httpd", directive, dir);
    chmod(dir, 0750);
    return NULL;
}

/* Makes path (a directory) exist. Only the levels made here go to User: an
 * existing directory is the operator's, never re-owned or re-moded (User's
 * access to it is checked by check_as_user). */
static const char *prepare_dir(apr_pool_t *p, const char *directive, const char *path)
{
    int exists;
    const char *err = dir_state(p, directive, path, &exists);
    if (err || exists)
        return err;
    apr_array_header_t *made = missing_levels(p, path);
    apr_status_t rv = apr_dir_make_recursive(path, APR_FPROT_OS_DEFAULT & ~APR_FPROT_WWRITE, p);
    if (rv != APR_SUCCESS)
        return apr_psprintf(p, "%s: cannot create directory %s: %pm", directive, path, &rv);
    for (int i = 0; i < made->nelts; i++)
        if ((err = give_dir_to_user(p, directive, APR_ARRAY_IDX(made, i, const char *))))
            return err;
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

/* Writes a fresh secret under a temporary name, then links it to the
 * file's name: a crash leaves no short secret file (which would stop every
 * later start), and a node of a cluster starting at the same moment keeps
 * the secret the other made first (link does not replace). */
static const char *create_secret(apr_pool_t *p, const char *path)
{
    unsigned char fresh[US_SECRET_LEN];
    apr_file_t *f;
    if (apr_generate_random_bytes(fresh, sizeof(fresh)) != APR_SUCCESS)
        return "UploadSessionSecretFile: no random bytes for a new secret";
    const char *tmp = apr_psprintf(p, "%s.new.%" APR_PID_T_FMT, path, getpid());
    (void)apr_file_remove(tmp, p); /* a crashed start's, same pid */
    apr_status_t rv = apr_file_open(&f, tmp,
                                    APR_FOPEN_WRITE | APR_FOPEN_CREATE | APR_FOPEN_EXCL |
                                        APR_FOPEN_BINARY,
                                    APR_FPROT_UREAD | APR_FPROT_UWRITE, p);
    if (rv == APR_SUCCESS) {
        rv = apr_file_write_full(f, fresh, sizeof(fresh), NULL);
        if (rv == APR_SUCCESS)
            rv = apr_file_sync(f);
        apr_file_close(f);
    }
    if (rv == APR_SUCCESS && link(tmp, path) != 0 && errno != EEXIST)
        rv = APR_FROM_OS_ERROR(errno);
    (void)apr_file_remove(tmp, p);
    if (rv != APR_SUCCESS)
        return apr_psprintf(p, "UploadSessionSecretFile: cannot create %s: %pm", path, &rv);
    (void)us_fsync_parent(path); /* the new name, durable */
    give_to_user(path);
    return NULL;
}

/* Loads the signing secret, creating it (0600) on first start. Whoever
 * can read it can sign upload policies: a world-readable one is refused. */
static const char *load_secret(apr_pool_t *p, us_srv_conf *c)
{
    apr_file_t *f;
    apr_finfo_t fi;
    apr_size_t n = US_SECRET_LEN;
    apr_status_t rv = apr_file_open(&f, c->secret_file, APR_FOPEN_READ | APR_FOPEN_BINARY,
                                    APR_OS_DEFAULT, p);
    if (APR_STATUS_IS_ENOENT(rv)) {
        const char *err = create_secret(p, c->secret_file);
        if (err)
            return err;
        rv = apr_file_open(&f, c->secret_file, APR_FOPEN_READ | APR_FOPEN_BINARY,
                           APR_OS_DEFAULT, p);
    }
    if (rv == APR_SUCCESS && apr_file_info_get(&fi, APR_FINFO_PROT, f) == APR_SUCCESS &&
        (fi.protection & APR_FPROT_WREAD)) {
        apr_file_close(f);
        return apr_psprintf(p, "UploadSessionSecretFile: %s is world-readable: chmod o-r it",
                            c->secret_file);
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
void us_give_store_to_user(apr_pool_t *p, const us_store_cfg *cfg)
{
    const apr_array_header_t *paths = us_store_user_files(cfg, p);
    for (int i = 0; i < paths->nelts; i++)
        give_to_user(APR_ARRAY_IDX(paths, i, const char *));
}

/* A remote store (not posix: its directory is prepared by the children)
 * is prepared and probed once at startup; when it cannot be used, one line
 * says so and the module serves anyway, answering 503 where files are
 * needed until the store answers. */
static int storage_usable(apr_pool_t *pconf, apr_pool_t *p, server_rec *s, us_srv_conf *c)
{
    if (strcmp(us_storage_name(c->storage), "posix") == 0)
        return 1;
    us_storage_set_logger(c->storage, NULL); /* the one line below says it all */
    apr_status_t rv = us_storage_prepare(c->storage, p);
    if (rv == APR_SUCCESS)
        rv = us_storage_check(c->storage, p);
    us_storage_set_logger(c->storage, us_error_log_for(pconf, s));
    if (rv != APR_SUCCESS)
        ap_log_error(APLOG_MARK, APLOG_WARNING, rv, s, USLOGNO(0016)
                     "UploadSessionStorage %s %s: the bucket cannot be reached or written; "
                     "serving anyway, with 503 where files are needed", us_storage_name(c->storage),
                     c->storage_params);
    return rv == APR_SUCCESS;
}

/* Writes the webhook URLs of c into its store (none: no events are kept).
 * The undelivered events of a URL no longer listed go with it: said at
 * warn, a URL at a time - on a store shared by several nodes, a node
 * whose configuration lags (no UploadSessionWebhook) drops the others'. */
static us_db_rc set_webhook_targets(apr_pool_t *p, server_rec *s, us_srv_conf *c,
                                    const char **err)
{
    us_db *db = NULL;
    apr_array_header_t *none = apr_array_make(p, 1, sizeof(const char *));
    apr_array_header_t *dropped = NULL;
    us_db_rc rc = us_db_open(p, c->store_cfg, &db, err);
    if (rc != US_DB_OK) {
        *err = apr_pstrcat(p, "UploadSessionStore: ", *err, NULL);
        return rc;
    }
    rc = us_webhook_targets_replace(db, p, c->webhooks ? c->webhooks : none, &dropped);
    if (rc != US_DB_OK)
        *err = apr_pstrcat(p, "UploadSessionWebhook: cannot record the URLs in the store: ",
                           us_db_error(db), NULL);
    for (int i = 0; rc == US_DB_OK && i < dropped->nelts; i++) {
        const us_webhook_dropped *d = &APR_ARRAY_IDX(dropped, i, us_webhook_dropped);
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, USLOGNO(0025)
                     "UploadSessionWebhook: %" APR_INT64_T_FMT " undelivered webhook events "
                     "for %s dropped: that URL is not configured here (every node on one store "
                     "must list the same URLs)", (apr_int64_t)d->pending,
                     us_webhook_url_shown(p, d->url));
    }
    us_db_close(db);
    return rc;
}

/* ---- the directories the children write, checked as httpd's User ---------- */

typedef struct {
    const char *directive;
    const char *path;
    int must_exist;         /* not made on demand: missing is an error too */
} user_dir;

/* The first directory on the way to path (itself excluded) that the
 * calling process cannot search, or NULL. */
static const char *blocking_parent(apr_pool_t *p, const char *path)
{
    for (const char *s = strchr(path + 1, '/'); s; s = strchr(s + 1, '/')) {
        const char *prefix = apr_pstrmemdup(p, path, (apr_size_t)(s - path));
        if (access(prefix, X_OK) != 0)
            return prefix;
    }
    return access("/", X_OK) != 0 ? "/" : NULL;
}

/* In the forked process, now httpd's User: one line per problem to fd,
 * "D<index>\t<errno>\t<blocking parent>" or "K<errno>". Only when starting
 * are the storage's directories made and the key file looked at: the check
 * at check_config (`httpd -t` too) changes nothing on disk. */
static void check_dirs_here(int fd, apr_pool_t *p, us_srv_conf *c,
                            const apr_array_header_t *dirs, int starting)
{
    char line[PATH_MAX + 64];
    if (starting && strcmp(us_storage_name(c->storage), "posix") == 0)
        us_storage_prepare(c->storage, p); /* data/files, made as the children would */
    for (int i = 0; i < dirs->nelts; i++) {
        const user_dir *d = &APR_ARRAY_IDX(dirs, i, user_dir);
        if (access(d->path, W_OK | X_OK) == 0 || (errno == ENOENT && !d->must_exist))
            continue; /* a missing one is made on demand in its (checked) parent */
        int e = errno;
        const char *parent = blocking_parent(p, d->path);
        int n = snprintf(line, sizeof(line), "D%d\t%d\t%s\n", i, e, parent ? parent : "");
        if (n > 0 && (size_t)n < sizeof(line) && write(fd, line, (size_t)n) < 0)
            return;
    }
    if (starting && access(c->key_file, R_OK) != 0) {
        int n = snprintf(line, sizeof(line), "K%d\n", errno);
        if (n > 0 && (size_t)n < sizeof(line) && write(fd, line, (size_t)n) < 0)
            return;
    }
}

static const char *user_name(apr_pool_t *p)
{
    return ap_unixd_config.user_name ? ap_unixd_config.user_name
                                     : apr_psprintf(p, "uid %ld", (long)ap_unixd_config.user_id);
}

/* A directory d that must exist and does not: the startup error. */
static const char *missing_dir(apr_pool_t *p, const user_dir *d)
{
    return apr_psprintf(p, "%s: directory %s does not exist (create it, writable for httpd's "
                        "User %s)", d->directive, d->path, user_name(p));
}

/* The directories the children write: the store's, then the storage's. */
static apr_array_header_t *user_dirs(apr_pool_t *p, us_srv_conf *c)
{
    apr_array_header_t *dirs = apr_array_make(p, 4, sizeof(user_dir));
    const char *home = us_store_home(c->store_cfg, p);
    const apr_array_header_t *local = us_storage_local_dirs(c->storage, p);
    const char *temp = us_storage_temp_dir(c->storage);
    if (home) {
        user_dir *d = apr_array_push(dirs);
        d->directive = "UploadSessionStore";
        d->path = dir_path(p, home);
        d->must_exist = 0;
    }
    for (int i = 0; i < local->nelts; i++) {
        user_dir *d = apr_array_push(dirs);
        d->directive = "UploadSessionDataDir";
        d->path = APR_ARRAY_IDX(local, i, const char *);
        d->must_exist = 0;
    }
    if (temp) {
        /* needed only once the part memory is in use: checked now, not
         * found by the first large upload that fails */
        user_dir *d = apr_array_push(dirs);
        d->directive = "UploadSessionStorage s3 (parts past UploadSessionS3PartMemory are "
                       "written to $TMPDIR of httpd's environment, else /var/tmp)";
        d->path = temp;
        d->must_exist = 1;
    }
    return dirs;
}

/* Every directory the children write (the store's, the storage's) checked
 * by a forked process that has become httpd's User, as the children will:
 * a directory it cannot write or a parent it cannot search is a startup
 * error naming both; when starting, a key file it cannot read is a warning
 * (the children re-read it: changes then need a restart). */
static const char *check_as_user(apr_pool_t *p, server_rec *s, us_srv_conf *c,
                                 const apr_array_header_t *dirs, int starting)
{
    int pfd[2];
    char buf[4 * PATH_MAX];
    size_t got = 0;
    ssize_t n;

    if (pipe(pfd) != 0)
        return "cannot check the directories as httpd's User: pipe failed";
    pid_t pid = fork();
    if (pid < 0) {
        close(pfd[0]);
        close(pfd[1]);
        return "cannot check the directories as httpd's User: fork failed";
    }
    if (pid == 0) {
        close(pfd[0]);
        if (geteuid() == 0 && ap_unixd_config.user_id != 0 &&
            (setgid(ap_unixd_config.group_id) != 0 ||
             initgroups(ap_unixd_config.user_name, ap_unixd_config.group_id) != 0 ||
             setuid(ap_unixd_config.user_id) != 0)) {
            if (write(pfd[1], "U\n", 2) < 0)
                _exit(1);
            _exit(1);
        }
        check_dirs_here(pfd[1], p, c, dirs, starting);
        _exit(0);
    }
    close(pfd[1]);
    while (got < sizeof(buf) - 1 && (n = read(pfd[0], buf + got, sizeof(buf) - 1 - got)) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            break;
        got += (size_t)n;
    }
    buf[got] = '\0';
    close(pfd[0]);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
    if (buf[0] == 'U')
        return apr_psprintf(p, "cannot become httpd's User %s to check the directories",
                            user_name(p));
    for (char *ln = buf, *next; ln && *ln; ln = next) {
        next = strchr(ln, '\n');
        if (next)
            *next++ = '\0';
        if (ln[0] == 'K') {
            apr_status_t e = APR_FROM_OS_ERROR(atoi(ln + 1));
            ap_log_error(APLOG_MARK, APLOG_WARNING, e, s, USLOGNO(0022)
                         "UploadSessionKeyFile %s cannot be read by httpd's User %s: "
                         "changes to it take effect only at a restart (make it readable "
                         "by that user, e.g. chgrp %s and mode 0640)", c->key_file,
                         user_name(p), ap_unixd_config.user_name ? ap_unixd_config.user_name
                                                                 : "its group");
            us_keystore_set_interval(c->keys, 0);
            continue;
        }
        char *tab1 = strchr(ln, '\t'), *tab2 = tab1 ? strchr(tab1 + 1, '\t') : NULL;
        int i = atoi(ln + 1);
        if (ln[0] != 'D' || !tab2 || i < 0 || i >= dirs->nelts)
            continue;
        const user_dir *d = &APR_ARRAY_IDX(dirs, i, user_dir);
        apr_status_t e = APR_FROM_OS_ERROR(atoi(tab1 + 1));
        const char *parent = tab2 + 1;
        if (APR_STATUS_IS_ENOENT(e))
            return missing_dir(p, d);
        if (*parent)
            return apr_psprintf(p, "%s: httpd's User %s cannot reach directory %s: it cannot "
                                "search %s (%pm; e.g. chmod o+x %s, or move the directory)",
                                d->directive, user_name(p), d->path, parent, &e, parent);
        return apr_psprintf(p, "%s: httpd's User %s cannot write to directory %s (%pm; "
                            "chown it to that user or make it writable for it)",
                            d->directive, user_name(p), d->path, &e);
    }
    return NULL;
}

/* dir_state once per path: the store's directory and the data directory
 * are also entries of user_dirs. */
static const char *dir_state_once(apr_pool_t *p, apr_hash_t *seen, const char *directive,
                                  const char *path, int *exists)
{
    const int *known = apr_hash_get(seen, path, APR_HASH_KEY_STRING);
    if (known) {
        *exists = *known;
        return NULL;
    }
    const char *err = dir_state(p, directive, path, exists);
    int *state = apr_palloc(p, sizeof(*state));
    *state = *exists;
    apr_hash_set(seen, path, APR_HASH_KEY_STRING, state);
    return err;
}

/* For check_config, so `httpd -t` sees it too, and before anything is made:
 * the store's and the data directory (in this order), then the storage's,
 * where they exist, are directories, and those the children write User
 * can write. */
static const char *check_existing_dirs(apr_pool_t *p, server_rec *s, us_srv_conf *c)
{
    const apr_array_header_t *all = user_dirs(p, c);
    apr_array_header_t *there = apr_array_make(p, all->nelts, sizeof(user_dir));
    apr_hash_t *seen = apr_hash_make(p);
    const char *home = us_store_home(c->store_cfg, p);
    const char *err = NULL;
    int exists;

    if (home && (err = dir_state_once(p, seen, "UploadSessionStore", dir_path(p, home),
                                      &exists)))
        return err;
    if ((err = dir_state_once(p, seen, "UploadSessionDataDir", c->data_dir, &exists)))
        return err;
    for (int i = 0; i < all->nelts; i++) {
        const user_dir *d = &APR_ARRAY_IDX(all, i, user_dir);
        if ((err = dir_state_once(p, seen, d->directive, d->path, &exists)))
            return err;
        if (exists)
            *(user_dir *)apr_array_push(there) = *d;
        else if (d->must_exist)
            return missing_dir(p, d);
    }
    return there->nelts ? check_as_user(p, s, c, there, 0) : NULL;
}

/* Whether this httpd has set up the store of c (its schema made current)
 * in an earlier generation: remembered in the process pool, which a
 * restart keeps (a store's key is copied there once). Marks it so when
 * `mark`; p is for the lookup. */
static int store_set_up_before(apr_pool_t *p, server_rec *s, const us_srv_conf *c, int mark)
{
    void *v = NULL;
    apr_pool_t *pp = s->process->pool;
    apr_pool_userdata_get(&v, "us_stores_set_up", pp);
    if (!v) {
        v = apr_hash_make(pp);
        apr_pool_userdata_set(v, "us_stores_set_up", apr_pool_cleanup_null, pp);
    }
    const char *k = us_store_key(p, c);
    int before = apr_hash_get(v, k, APR_HASH_KEY_STRING) != NULL;
    if (mark && !before)
        apr_hash_set(v, apr_pstrdup(pp, k), APR_HASH_KEY_STRING, "");
    return before;
}

/* The store's part of a server's setup: its schema, its webhook URLs (those
 * of the first server naming it), this node's name. */
static us_db_rc setup_store(apr_pool_t *p, server_rec *s, us_srv_conf *c, int first_of_store,
                            const char **err)
{
    us_db_rc rc = us_store_migrate(c->store_cfg, p, err);
    if (rc != US_DB_OK) {
        *err = apr_pstrcat(p, "UploadSessionStore: ", *err, NULL);
        return rc;
    }
    if (first_of_store && (rc = set_webhook_targets(p, s, c, err)) != US_DB_OK)
        return rc;
    return us_node_claim_name(p, s, c, err);
}

static const char *setup_server(apr_pool_t *pconf, apr_pool_t *p, server_rec *s,
                                us_srv_conf *c, int first_of_store)
{
    const char *err = NULL;
    const char *home = us_store_home(c->store_cfg, p);

    if (home && (err = prepare_dir(p, "UploadSessionStore", dir_path(p, home))))
        return err;
    if ((err = prepare_dir(p, "UploadSessionDataDir", c->data_dir)))
        return err;
    if (us_store_prepare_files(c->store_cfg, p, &err) != US_DB_OK)
        return apr_pstrcat(p, "UploadSessionStore: ", err, NULL);
    us_db_rc rc = setup_store(p, s, c, first_of_store, &err);
    /* A restart (graceful ones come daily, from logrotate) must not stop a
     * server over a store that is down or locked for now: the children
     * reconnect by themselves, and the schema is the one this httpd made
     * current. A store never set up here is still a startup error. */
    if (rc == US_DB_BUSY && store_set_up_before(p, s, c, 0))
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, USLOGNO(0023)
                     "%s; restarting anyway: the store keeps the schema, webhook URLs and "
                     "node name an earlier start recorded until a restart records them, and "
                     "what needs the store is answered 503 while it cannot be reached", err);
    else if (rc != US_DB_OK)
        return err;
    else
        store_set_up_before(p, s, c, 1);
    /* the logger lives as long as the storage, in the parent and the children */
    us_storage_set_logger(c->storage, us_error_log_for(pconf, s));
    if (storage_usable(pconf, p, s, c))
        us_storage_recover(c->storage, p);
    us_give_store_to_user(p, c->store_cfg);
    if ((err = check_as_user(p, s, c, user_dirs(p, c), 1)))
        return err;
    return load_secret(p, c);
}

int us_post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
                       server_rec *s)
{
    (void)plog;
    /* the first start runs the configuration twice; do the work once */
    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG)
        return OK;
    int enabled = 0;
    apr_hash_t *stores = apr_hash_make(ptemp);
    us_metrics_setup(s);
    if (us_srv_conf_get(s)->server_token == 1)
        ap_add_version_component(pconf, "mod_upload_session/" US_VERSION);
    for (server_rec *v = s; v; v = v->next) {
        us_srv_conf *c = us_srv_conf_get(v);
        if (!us_srv_enabled(c))
            continue;
        const char *k = us_store_key(ptemp, c);
        int first = apr_hash_get(stores, k, APR_HASH_KEY_STRING) == NULL;
        apr_hash_set(stores, k, APR_HASH_KEY_STRING, c);
        const char *err = setup_server(pconf, ptemp, v, c, first);
        if (err) {
            ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_EMERG, 0, NULL,
                         USLOGNO(0002) "mod_upload_session: %s", err);
            return HTTP_INTERNAL_SERVER_ERROR;
        }
        if (c->keepalive_was >= 0)
            ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, v, USLOGNO(0026)
                         "KeepAliveTimeout %" APR_TIME_T_FMT " ms of %s raised to %d s: the "
                         "deepset SDK's client keeps an idle connection %d s and does not "
                         "send a POST or PUT again that finds it closed",
                         apr_time_as_msec(c->keepalive_was), server_label(ptemp, s, v),
                         US_KEEPALIVE_FLOOR_S, US_CLIENT_KEEPALIVE_S);
        if (c->keepalive_kept >= 0)
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, v, USLOGNO(0027)
                         "KeepAliveTimeout %" APR_TIME_T_FMT " ms of %s kept as its virtual "
                         "host sets it: the deepset SDK's client keeps an idle connection %d s "
                         "and does not send a POST or PUT again that finds it closed, so its "
                         "session creates and closes can fail; more than %d s avoids that",
                         apr_time_as_msec(c->keepalive_kept), server_label(ptemp, s, v),
                         US_CLIENT_KEEPALIVE_S, US_CLIENT_KEEPALIVE_S);
        enabled++;
    }
    ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s, USLOGNO(0011)
                 "mod_upload_session (v" US_VERSION ") configured: %d server%s with UploadSession On",
                 enabled, enabled == 1 ? "" : "s");
    return OK;
}
