/*
 * config.c - the per-server configuration: creation and merging, the
 * directives with their validation and error texts, and the defaults that
 * depend on other directives.
 */
#include "hooks.h"
#include "us_webhook.h"

#include <http_config.h>
#include <httpd.h>
#include <apr_lib.h>
#include <apr_strings.h>
#include <apr_uri.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void *us_srv_conf_create(apr_pool_t *p, server_rec *s)
{
    us_srv_conf *c = apr_pcalloc(p, sizeof(*c));
    (void)s;
    c->enabled = -1;
    c->max_open = -1;
    c->max_lifetime = -1;
    c->max_file_size = -1;
    c->max_files = -1;
    c->ingest_threads = -1;
    c->sweep_interval = -1;
    c->ingest_lease = -1;
    c->refusal_pause = -1;
    c->busy_timeout = -1;
    c->server_token = -1;
    c->s3_direct = -1;
    c->s3_part_memory = -1;
    c->cors_any = -1;
    c->cors_max_age = -1;
    c->webhook_retry_for = -1;
    c->webhook_retention = -1;
    return c;
}

#define MERGE(f, unset) m->f = (add->f != (unset)) ? add->f : base->f

void *us_srv_conf_merge(apr_pool_t *p, void *basev, void *addv)
{
    us_srv_conf *base = basev, *add = addv, *m = apr_pcalloc(p, sizeof(*m));
    MERGE(enabled, -1);
    MERGE(store_driver, NULL);
    MERGE(store_params, NULL);
    MERGE(key_file, NULL);
    MERGE(public_url, NULL);
    MERGE(data_dir, NULL);
    MERGE(storage_name, NULL);
    MERGE(storage_params, NULL);
    MERGE(s3_region, NULL);
    MERGE(s3_credentials, NULL);
    MERGE(s3_prefix, NULL);
    MERGE(s3_direct, -1);
    MERGE(s3_part_memory, -1);
    MERGE(secret_file, NULL);
    MERGE(doc_url, NULL);
    MERGE(node_name, NULL);
    MERGE(max_open, -1);
    MERGE(max_lifetime, -1);
    MERGE(max_file_size, -1);
    MERGE(max_files, -1);
    MERGE(ingest_threads, -1);
    MERGE(sweep_interval, -1);
    MERGE(ingest_lease, -1);
    MERGE(refusal_pause, -1);
    MERGE(busy_timeout, -1);
    MERGE(server_token, -1);
    /* the allowed origins are one setting: a server listing origins does
     * not inherit '*', nor '*' the list */
    if (add->cors_any != -1 || add->cors_origins) {
        m->cors_any = add->cors_any;
        m->cors_origins = add->cors_origins;
    }
    else {
        m->cors_any = base->cors_any;
        m->cors_origins = base->cors_origins;
    }
    MERGE(cors_allow_headers, NULL);
    MERGE(cors_expose_headers, NULL);
    MERGE(cors_max_age, -1);
    /* a server listing webhooks does not add the main server's to them */
    MERGE(webhooks, NULL);
    MERGE(webhook_secret_file, NULL);
    MERGE(webhook_retry_for, -1);
    MERGE(webhook_retention, -1);
    return m;
}

/* The Server header belongs to the whole server: main configuration only. */
static const char *set_server_token(cmd_parms *cmd, void *d, int on)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    (void)d;
    if (err)
        return err;
    us_srv_conf_get(cmd->server)->server_token = on ? 1 : 0;
    return NULL;
}

static const char *set_flag(cmd_parms *cmd, void *d, int on)
{
    (void)d;
    us_srv_conf_get(cmd->server)->enabled = on ? 1 : 0;
    return NULL;
}

static const char *set_store(cmd_parms *cmd, void *d, const char *driver,
                             const char *params)
{
    us_srv_conf *c = us_srv_conf_get(cmd->server);
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

/* UploadSessionStorage <backend> [params...]: the backend must be in this
 * build; its parameters are checked with the rest at check_config. */
static const char *set_storage(cmd_parms *cmd, void *d, int argc, char *const argv[])
{
    us_srv_conf *c = us_srv_conf_get(cmd->server);
    (void)d;
    if (argc < 1 || !*argv[0])
        return "UploadSessionStorage: expects a backend name, e.g. UploadSessionStorage posix";
    if (!us_storage_backend_known(argv[0]))
        return apr_psprintf(cmd->pool, "UploadSessionStorage: no storage backend '%s' in this build",
                            argv[0]);
    c->storage_name = argv[0];
    c->storage_params = "";
    for (int i = 1; i < argc; i++)
        c->storage_params = i == 1 ? argv[i] : apr_pstrcat(cmd->pool, c->storage_params, " ",
                                                           argv[i], NULL);
    return NULL;
}

static const char *set_s3_direct(cmd_parms *cmd, void *d, int on)
{
    (void)d;
    us_srv_conf_get(cmd->server)->s3_direct = on ? 1 : 0;
    return NULL;
}

/* UploadSessionS3Region and UploadSessionS3Prefix: one word (no spaces,
 * they are passed to the backend as a parameter list). */
static const char *set_s3_word(cmd_parms *cmd, void *d, const char *arg)
{
    us_srv_conf *c = us_srv_conf_get(cmd->server);
    (void)d;
    if (strpbrk(arg, " \t") || (!*arg && cmd->info == (void *)APR_OFFSETOF(us_srv_conf, s3_region)))
        return apr_pstrcat(cmd->pool, cmd->cmd->name, ": expects one word without spaces, not '",
                           arg, "'", NULL);
    *(const char **)((char *)c + (size_t)cmd->info) = arg;
    return NULL;
}

/* Directives whose argument is a file path, relative to ServerRoot;
 * cmd->info is the offset of its field in us_srv_conf. */
static const char *set_path(cmd_parms *cmd, void *d, const char *arg)
{
    us_srv_conf *c = us_srv_conf_get(cmd->server);
    const char *path = ap_server_root_relative(cmd->pool, arg);
    (void)d;
    if (!path || !*arg)
        return apr_pstrcat(cmd->pool, cmd->cmd->name, ": invalid path '", arg, "'", NULL);
    *(const char **)((char *)c + (size_t)cmd->info) = path;
    return NULL;
}

/* UploadSessionS3CredentialsFile: a path, passed to the s3 backend in its
 * space-separated parameter list (check_server), so without spaces once
 * made absolute (ServerRoot's included). */
static const char *set_s3_credentials(cmd_parms *cmd, void *d, const char *arg)
{
    const char *path = ap_server_root_relative(cmd->pool, arg);
    if (path && strpbrk(path, " \t"))
        return apr_pstrcat(cmd->pool, cmd->cmd->name, ": expects a path without spaces, not '",
                           path, "'", NULL);
    return set_path(cmd, d, arg);
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
    return check_url(cmd, arg, &us_srv_conf_get(cmd->server)->public_url);
}

/* This node's name in ingest claims and logs: printable ASCII, no '/'
 * (the claim owner is NAME/pid/thread). Bytes are compared as unsigned:
 * a plain char is signed on some targets and unsigned on others, and a
 * name must mean the same on every node. */
static const char *set_node_name(cmd_parms *cmd, void *d, const char *arg)
{
    (void)d;
    if (!*arg || strlen(arg) > 64)
        return "UploadSessionNodeName: 1 to 64 characters";
    for (const unsigned char *c = (const unsigned char *)arg; *c; c++)
        if (*c <= ' ' || *c == '/' || *c >= 127)
            return "UploadSessionNodeName: printable ASCII characters only, no spaces, "
                   "control characters or '/'";
    us_srv_conf_get(cmd->server)->node_name = arg;
    return NULL;
}

static const char *set_doc_url(cmd_parms *cmd, void *d, const char *arg)
{
    (void)d;
    return check_url(cmd, arg, &us_srv_conf_get(cmd->server)->doc_url);
}

/* A whole number from 1 to max for the directive being parsed, into *out. */
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
    return set_positive(cmd, arg, 1000000, &us_srv_conf_get(cmd->server)->max_open);
}

static const char *set_max_lifetime(cmd_parms *cmd, void *d, const char *arg)
{
    (void)d;
    /* the API accepts at most 86400 s per session; a larger cap means nothing */
    return set_positive(cmd, arg, US_DEFAULT_MAX_LIFETIME, &us_srv_conf_get(cmd->server)->max_lifetime);
}

static const char *set_max_files(cmd_parms *cmd, void *d, const char *arg)
{
    (void)d;
    return set_positive(cmd, arg, 100000000, &us_srv_conf_get(cmd->server)->max_files);
}

/* A size in bytes, or with a K/M/G suffix (binary units), 1 to 1 PiB,
 * into the long long at cmd->info's offset in us_srv_conf. */
static const char *set_size(cmd_parms *cmd, void *d, const char *arg)
{
    char *end = NULL;
    apr_off_t v = 0;
    (void)d;
    enum { MAX_SHIFT = 50 }; /* 1 PiB */
    /* bytes, or with a K/M/G suffix (binary units); digits only, no sign */
    if (!apr_isdigit(*arg) || apr_strtoff(&v, arg, &end, 10) != APR_SUCCESS || v < 1)
        v = -1;
    else if (*end && !end[1] && strchr("kKmMgG", *end)) {
        int shift = (*end == 'k' || *end == 'K') ? 10 : (*end == 'm' || *end == 'M') ? 20 : 30;
        /* checked before the shift: a shifted value past the limit wraps */
        v = v > ((apr_off_t)1 << (MAX_SHIFT - shift)) ? -1 : v << shift;
    }
    else if (*end)
        v = -1;
    if (v < 1 || v > (apr_off_t)1 << MAX_SHIFT)
        return apr_psprintf(cmd->pool, "%s: expects a size in bytes (optionally with K, M or G), "
                            "not '%s'", cmd->cmd->name, arg);
    *(long long *)((char *)us_srv_conf_get(cmd->server) + (size_t)cmd->info) = (long long)v;
    return NULL;
}

static const char *set_ingest_threads(cmd_parms *cmd, void *d, const char *arg)
{
    (void)d;
    return set_positive(cmd, arg, 64, &us_srv_conf_get(cmd->server)->ingest_threads);
}

static const char *set_sweep_interval(cmd_parms *cmd, void *d, const char *arg)
{
    (void)d;
    return set_positive(cmd, arg, 86400, &us_srv_conf_get(cmd->server)->sweep_interval);
}

static const char *set_ingest_lease(cmd_parms *cmd, void *d, const char *arg)
{
    (void)d;
    return set_positive(cmd, arg, 3600, &us_srv_conf_get(cmd->server)->ingest_lease);
}

static const char *set_refusal_pause(cmd_parms *cmd, void *d, const char *arg)
{
    (void)d;
    return set_positive(cmd, arg, 60000, &us_srv_conf_get(cmd->server)->refusal_pause);
}

static const char *set_busy_timeout(cmd_parms *cmd, void *d, const char *arg)
{
    (void)d;
    return set_positive(cmd, arg, 60000, &us_srv_conf_get(cmd->server)->busy_timeout);
}

/* UploadSessionCORSAllowOrigin * | ORIGIN...: one call per argument. */
static const char *set_cors_origin(cmd_parms *cmd, void *d, const char *arg)
{
    us_srv_conf *c = us_srv_conf_get(cmd->server);
    (void)d;
    if (strcmp(arg, "*") == 0) {
        if (c->cors_origins)
            return "UploadSessionCORSAllowOrigin: '*' allows every origin; it cannot be "
                   "combined with a list of origins";
        c->cors_any = 1;
        return NULL;
    }
    if (c->cors_any == 1)
        return "UploadSessionCORSAllowOrigin: '*' allows every origin; it cannot be "
               "combined with a list of origins";
    if (!us_cors_origin_normalize(cmd->pool, arg))
        return apr_psprintf(cmd->pool, "UploadSessionCORSAllowOrigin: expects '*' or origins "
                            "such as https://app.example.com (http or https, host, optional "
                            "port; no path, not even a trailing '/'), not '%s'", arg);
    if (!c->cors_origins)
        c->cors_origins = apr_array_make(cmd->pool, 4, sizeof(const char *));
    c->cors_any = 0;
    APR_ARRAY_PUSH(c->cors_origins, const char *) = arg;
    return NULL;
}

/* UploadSessionCORSAllowHeaders / ...ExposeHeaders NAME...: one call per
 * argument; cmd->info is the offset of the list in us_srv_conf. */
static const char *set_cors_headers(cmd_parms *cmd, void *d, const char *arg)
{
    us_srv_conf *c = us_srv_conf_get(cmd->server);
    apr_array_header_t **list = (apr_array_header_t **)((char *)c + (size_t)cmd->info);
    (void)d;
    if (!*list)
        *list = apr_array_make(cmd->pool, 4, sizeof(const char *));
    if (us_cors_list_add(*list, arg) != 0)
        return apr_psprintf(cmd->pool, "%s: expects header names such as X-Request-Id "
                            "(separated by spaces, not commas), not '%s'", cmd->cmd->name, arg);
    return NULL;
}

static const char *set_cors_max_age(cmd_parms *cmd, void *d, const char *arg)
{
    char *end = NULL;
    (void)d;
    errno = 0;
    long v = strtol(arg, &end, 10);
    if (errno || !*arg || *end || v < 0 || v > US_CORS_MAX_MAX_AGE)
        return apr_psprintf(cmd->pool, "%s: expects seconds from 0 to %d, not '%s'",
                            cmd->cmd->name, US_CORS_MAX_MAX_AGE, arg);
    us_srv_conf_get(cmd->server)->cors_max_age = (int)v;
    return NULL;
}

/* UploadSessionWebhook URL: repeatable, one URL each time. */
static const char *set_webhook(cmd_parms *cmd, void *d, const char *arg)
{
    us_srv_conf *c = us_srv_conf_get(cmd->server);
    const char *why = us_webhook_url_check(cmd->pool, arg);
    (void)d;
    if (why)
        return apr_pstrcat(cmd->pool, "UploadSessionWebhook: ", why, NULL);
    if (!c->webhooks)
        c->webhooks = apr_array_make(cmd->pool, 2, sizeof(const char *));
    for (int i = 0; i < c->webhooks->nelts; i++)
        if (strcmp(APR_ARRAY_IDX(c->webhooks, i, const char *), arg) == 0)
            return apr_pstrcat(cmd->pool, "UploadSessionWebhook: ",
                               us_webhook_url_shown(cmd->pool, arg), " is listed twice", NULL);
    APR_ARRAY_PUSH(c->webhooks, const char *) = arg;
    return NULL;
}

static const char *set_webhook_retry_for(cmd_parms *cmd, void *d, const char *arg)
{
    (void)d;
    return set_positive(cmd, arg, 30 * 86400, &us_srv_conf_get(cmd->server)->webhook_retry_for);
}

static const char *set_webhook_retention(cmd_parms *cmd, void *d, const char *arg)
{
    (void)d;
    return set_positive(cmd, arg, 365 * 86400, &us_srv_conf_get(cmd->server)->webhook_retention);
}

const command_rec us_directives[] = {
    AP_INIT_FLAG("UploadSession", set_flag, NULL, RSRC_CONF,
                 "On to serve the upload sessions API in this server"),
    AP_INIT_TAKE2("UploadSessionStore", set_store, NULL, RSRC_CONF,
                  "apr_dbd driver and parameters, e.g. sqlite3 /path/store.db"),
    AP_INIT_TAKE1("UploadSessionKeyFile", set_path,
                  (void *)APR_OFFSETOF(us_srv_conf, key_file), RSRC_CONF,
                  "file of hashed API keys (see us-keygen)"),
    AP_INIT_TAKE1("UploadSessionPublicURL", set_public_url, NULL, RSRC_CONF,
                  "the base URL clients reach this server at (default: from the request)"),
    AP_INIT_TAKE1("UploadSessionNodeName", set_node_name, NULL, RSRC_CONF,
                  "this node's name in ingest claims and logs (default: the host name)"),
    AP_INIT_TAKE1("UploadSessionDocumentationURL", set_doc_url, NULL, RSRC_CONF,
                  "URL returned as documentation_url"),
    AP_INIT_TAKE1("UploadSessionDataDir", set_path,
                  (void *)APR_OFFSETOF(us_srv_conf, data_dir), RSRC_CONF,
                  "directory for uploaded files (default: beside the SQLite store)"),
    AP_INIT_TAKE_ARGV("UploadSessionStorage", set_storage, NULL, RSRC_CONF,
                      "where files are kept: posix (default; in UploadSessionDataDir) or "
                      "s3 <endpoint URL> <bucket>"),
    AP_INIT_TAKE1("UploadSessionS3Region", set_s3_word,
                  (void *)APR_OFFSETOF(us_srv_conf, s3_region), RSRC_CONF,
                  "the region requests to the s3 storage are signed for (default us-east-1)"),
    AP_INIT_TAKE1("UploadSessionS3CredentialsFile", set_s3_credentials,
                  (void *)APR_OFFSETOF(us_srv_conf, s3_credentials), RSRC_CONF,
                  "AWS shared-credentials file ([default] aws_access_key_id, "
                  "aws_secret_access_key); not world-readable"),
    AP_INIT_TAKE1("UploadSessionS3Prefix", set_s3_word,
                  (void *)APR_OFFSETOF(us_srv_conf, s3_prefix), RSRC_CONF,
                  "key prefix of every object in the bucket (default none)"),
    AP_INIT_FLAG("UploadSessionS3DirectUpload", set_s3_direct, NULL, RSRC_CONF,
                 "On: sessions hand out a presigned POST into the bucket itself "
                 "(default Off: the module's upload target)"),
    AP_INIT_TAKE1("UploadSessionS3PartMemory", set_size,
                  (void *)APR_OFFSETOF(us_srv_conf, s3_part_memory), RSRC_CONF,
                  "memory each process's uploads to s3 may fill parts in (default 64M); "
                  "parts past it are filled in temporary files"),
    AP_INIT_TAKE1("UploadSessionSecretFile", set_path,
                  (void *)APR_OFFSETOF(us_srv_conf, secret_file), RSRC_CONF,
                  "file holding the upload-policy signing secret (created if absent)"),
    AP_INIT_TAKE1("UploadSessionMaxOpenSessions", set_max_open, NULL, RSRC_CONF,
                  "OPEN sessions a user may have at once (default 10)"),
    AP_INIT_TAKE1("UploadSessionMaxLifetime", set_max_lifetime, NULL, RSRC_CONF,
                  "maximum session lifetime in seconds (default 86400)"),
    AP_INIT_TAKE1("UploadSessionMaxFileSize", set_size,
                  (void *)APR_OFFSETOF(us_srv_conf, max_file_size), RSRC_CONF,
                  "largest file one upload may carry, e.g. 5G (default)"),
    AP_INIT_TAKE1("UploadSessionMaxFilesPerSession", set_max_files, NULL, RSRC_CONF,
                  "files one session may receive, and as many sidecars (default unlimited)"),
    AP_INIT_TAKE1("UploadSessionBusyTimeout", set_busy_timeout, NULL, RSRC_CONF,
                  "ms an SQLite statement waits for another process's lock (default 1000)"),
    AP_INIT_TAKE1("UploadSessionIngestThreads", set_ingest_threads, NULL, RSRC_CONF,
                  "ingestion worker threads per child process (default 1)"),
    AP_INIT_TAKE1("UploadSessionSweepInterval", set_sweep_interval, NULL, RSRC_CONF,
                  "seconds between expiry sweeps in the parent (default 10; the "
                  "parent's monitor runs about every 10 s)"),
    AP_INIT_TAKE1("UploadSessionIngestLease", set_ingest_lease, NULL, RSRC_CONF,
                  "seconds an ingestion claim lives without a heartbeat before another "
                  "worker (of any node) takes the session over (default 60)"),
    AP_INIT_TAKE1("UploadSessionIngestRefusalPause", set_refusal_pause, NULL, RSRC_CONF,
                  "milliseconds before a file the file storage refused (a 4xx about that "
                  "object) is tried again, doubled per refusal (default 1000)"),
    AP_INIT_FLAG("UploadSessionServerToken", set_server_token, NULL, RSRC_CONF,
                 "On: add mod_upload_session/<version> to the Server header (as ServerTokens "
                 "allows; default Off)"),
    AP_INIT_ITERATE("UploadSessionCORSAllowOrigin", set_cors_origin, NULL, RSRC_CONF,
                    "origins browser scripts may call the API from (https://app.example.com "
                    "...), or * for every origin; CORS is off without it"),
    AP_INIT_ITERATE("UploadSessionCORSAllowHeaders", set_cors_headers,
                    (void *)APR_OFFSETOF(us_srv_conf, cors_allow_headers), RSRC_CONF,
                    "request headers a preflight allows beyond " US_CORS_ALLOW_HEADERS),
    AP_INIT_ITERATE("UploadSessionCORSExposeHeaders", set_cors_headers,
                    (void *)APR_OFFSETOF(us_srv_conf, cors_expose_headers), RSRC_CONF,
                    "response headers scripts may read beyond " US_CORS_EXPOSE_HEADERS),
    AP_INIT_TAKE1("UploadSessionCORSMaxAge", set_cors_max_age, NULL, RSRC_CONF,
                  "seconds a browser may cache a preflight answer (default 600)"),
    AP_INIT_TAKE1("UploadSessionWebhook", set_webhook, NULL, RSRC_CONF,
                  "URL (http or https) that receives a signed POST when a session is "
                  "ingested or expires; repeatable"),
    AP_INIT_TAKE1("UploadSessionWebhookSecretFile", set_path,
                  (void *)APR_OFFSETOF(us_srv_conf, webhook_secret_file), RSRC_CONF,
                  "file holding the secret webhook deliveries are signed with (HMAC-SHA256); "
                  "not world-readable"),
    AP_INIT_TAKE1("UploadSessionWebhookRetryFor", set_webhook_retry_for, NULL, RSRC_CONF,
                  "seconds after its event a webhook delivery is still retried before it is "
                  "marked failed (default 86400)"),
    AP_INIT_TAKE1("UploadSessionWebhookRetention", set_webhook_retention, NULL, RSRC_CONF,
                  "seconds a webhook delivery marked failed is kept (shown on the status "
                  "pages) before the expiry sweep deletes it (default 604800, 7 days)"),
    { NULL }
};

/* Fills defaults that depend on other directives. */
void us_srv_conf_defaults(apr_pool_t *p, us_srv_conf *c)
{
    const char *dir = us_store_home(c->store_cfg, p);
    if (c->max_open < 0)
        c->max_open = US_DEFAULT_MAX_OPEN;
    if (c->max_lifetime < 0)
        c->max_lifetime = US_DEFAULT_MAX_LIFETIME;
    if (c->max_file_size < 0)
        c->max_file_size = US_DEFAULT_MAX_FILE_SIZE;
    if (c->max_files < 0)
        c->max_files = 0; /* unlimited */
    if (c->ingest_threads < 0)
        c->ingest_threads = US_DEFAULT_INGEST_THREADS;
    if (c->sweep_interval < 0)
        c->sweep_interval = US_DEFAULT_SWEEP_INTERVAL;
    if (c->ingest_lease < 0)
        c->ingest_lease = US_DEFAULT_INGEST_LEASE;
    if (c->refusal_pause < 0)
        c->refusal_pause = US_DEFAULT_REFUSAL_PAUSE_MS;
    if (c->webhook_retry_for < 0)
        c->webhook_retry_for = US_DEFAULT_WEBHOOK_RETRY_FOR;
    if (c->webhook_retention < 0)
        c->webhook_retention = US_DEFAULT_WEBHOOK_RETENTION;
    if (c->busy_timeout < 0)
        c->busy_timeout = US_DEFAULT_BUSY_TIMEOUT_MS;
    if (!c->storage_name)
        c->storage_name = "posix";
    if (c->s3_direct < 0)
        c->s3_direct = 0;
    c->cors = us_cors_policy_make(p, c->cors_any == 1, c->cors_origins, c->cors_allow_headers,
                                  c->cors_expose_headers, c->cors_max_age);
    if (!c->data_dir && dir)
        c->data_dir = apr_pstrcat(p, dir, "data", NULL);
    if (!c->secret_file && dir)
        c->secret_file = apr_pstrcat(p, dir, "upload_session.secret", NULL);
}
