/*
 * us_module.h - what the httpd glue files share: the per-server
 * configuration (filled by config.c) and the request entry point.
 * httpd-specific.
 */
#ifndef US_MODULE_H
#define US_MODULE_H

#include <httpd.h>
#include <http_config.h>
#include <apr_dbd.h>

#include "us_auth.h"
#include "us_keystore.h"
#include "us_cors.h"
#include "us_metrics.h"
#include "us_router.h"
#include "us_storage.h"
#include "us_store.h"

/* Our own log-message tags, in the spirit of httpd's APLOGNO */
#define USLOGNO(n) "US" #n ": "

#define US_DEFAULT_MAX_OPEN 10
#define US_DEFAULT_MAX_LIFETIME 86400
#define US_DEFAULT_MAX_CONNS 32
/* how often a child looks at the key file (one stat) for changes */
#define US_KEYFILE_CHECK_INTERVAL apr_time_from_sec(2)
#define US_MMAP_THRESHOLD (128 * 1024) /* glibc's initial M_MMAP_THRESHOLD */
#define US_SECRET_LEN 32
#define US_DEFAULT_INGEST_THREADS 1
#define US_DEFAULT_SWEEP_INTERVAL 10
#define US_DEFAULT_INGEST_LEASE 60
#define US_DEFAULT_REFUSAL_PAUSE_MS 1000
#define US_DEFAULT_WEBHOOK_RETRY_FOR 86400
#define US_DEFAULT_WEBHOOK_RETENTION (7 * 86400)
/* failed webhook rows one expiry sweep deletes at most: a short write */
#define US_WEBHOOK_FORGET_BATCH 1000
/* The official SDK's HTTP client (httpx) drops a connection idle for 5 s,
 * and sends no POST or PUT again that met a connection closed under it: a
 * server closing an idle connection at 5 s too (httpd's default
 * KeepAliveTimeout) races it over any network, and the SDK's create or
 * close fails. A KeepAliveTimeout of at most US_CLIENT_KEEPALIVE_S in a
 * server with UploadSession On is raised to US_KEEPALIVE_FLOOR_S, above
 * aiohttp's 15 s too (the SDK's uploads), unless a virtual host sets it
 * itself. */
#define US_CLIENT_KEEPALIVE_S 5
#define US_KEEPALIVE_FLOOR_S 20
/* largest single upload by default: 5 GiB, S3's limit for one POST */
#define US_DEFAULT_MAX_FILE_SIZE (5LL * 1024 * 1024 * 1024)

typedef struct {
    int enabled;                /* -1 unset */
    const char *store_driver;   /* UploadSessionStore <driver> <params> */
    const char *store_params;
    const char *key_file;       /* UploadSessionKeyFile */
    const char *public_url;     /* UploadSessionPublicURL, no trailing slash */
    const char *data_dir;       /* UploadSessionDataDir */
    const char *storage_name;   /* UploadSessionStorage <backend> [params] */
    const char *storage_params;
    const char *s3_region;      /* UploadSessionS3Region (default us-east-1) */
    const char *s3_credentials; /* UploadSessionS3CredentialsFile */
    const char *s3_prefix;      /* UploadSessionS3Prefix */
    int s3_direct;              /* UploadSessionS3DirectUpload, -1 unset */
    long long s3_part_memory;   /* UploadSessionS3PartMemory (bytes), -1 unset */
    const char *secret_file;    /* UploadSessionSecretFile */
    const char *doc_url;        /* UploadSessionDocumentationURL */
    const char *node_name;      /* UploadSessionNodeName; NULL: the host name */
    int max_open;               /* UploadSessionMaxOpenSessions, -1 unset */
    int max_lifetime;           /* UploadSessionMaxLifetime (s), -1 unset */
    long long max_file_size;    /* UploadSessionMaxFileSize (bytes), -1 unset */
    int max_files;              /* UploadSessionMaxFilesPerSession, -1 unset, 0 unlimited */
    int ingest_threads;         /* UploadSessionIngestThreads per child, -1 unset */
    int sweep_interval;         /* UploadSessionSweepInterval (s), -1 unset */
    int ingest_lease;           /* UploadSessionIngestLease (s), -1 unset */
    int refusal_pause;          /* UploadSessionIngestRefusalPause (ms), -1 unset */
    int busy_timeout;           /* UploadSessionBusyTimeout (ms), -1 unset */
    int server_token;           /* UploadSessionServerToken (main server only), -1 unset */
    int cors_any;               /* UploadSessionCORSAllowOrigin *, -1 unset */
    apr_array_header_t *cors_origins;   /* UploadSessionCORSAllowOrigin ORIGIN..., NULL unset */
    apr_array_header_t *cors_allow_headers;  /* UploadSessionCORSAllowHeaders, NULL unset */
    apr_array_header_t *cors_expose_headers; /* UploadSessionCORSExposeHeaders, NULL unset */
    int cors_max_age;           /* UploadSessionCORSMaxAge (s), -1 unset */
    apr_array_header_t *webhooks; /* UploadSessionWebhook URL... (const char *), NULL unset */
    const char *webhook_secret_file; /* UploadSessionWebhookSecretFile */
    int webhook_retry_for;      /* UploadSessionWebhookRetryFor (s), -1 unset */
    int webhook_retention;      /* UploadSessionWebhookRetention (s), -1 unset */
    us_cors_policy *cors;       /* built from the above; NULL: CORS off */

    /* filled at (re)start in the parent, inherited by the children */
    us_keystore *keys;          /* re-reads UploadSessionKeyFile when it changes */
    us_store_cfg *store_cfg;    /* the store: its backend and parameters */
    us_storage *storage;        /* the file storage: its backend and directory */
    unsigned char secret[US_SECRET_LEN];
    const char *webhook_secret; /* read at check_config from webhook_secret_file */
    apr_interval_time_t keepalive_was; /* the KeepAliveTimeout check_config raised, -1 none */
    apr_interval_time_t keepalive_kept; /* a too short one the vhost sets itself, -1 none */
    apr_size_t webhook_secret_len;
    /* filled in each child */
    us_store *store;
    struct us_ingester *ingest; /* the store's workers here (us_ingest_poke), NULL: none */
} us_srv_conf;

extern module AP_MODULE_DECLARE_DATA upload_session_module;

static inline us_srv_conf *us_srv_conf_get(server_rec *s)
{
    return ap_get_module_config(s->module_config, &upload_session_module);
}

static inline int us_srv_enabled(const us_srv_conf *c)
{
    return c->enabled == 1;
}

/* Fills the defaults that depend on other directives (config.c). */
void us_srv_conf_defaults(apr_pool_t *p, us_srv_conf *c);

/* The counters (us_status.c): the shared segment, made (or found again
 * after a restart) in post_config; this child's slot and record of gauges,
 * NULL in the parent and before child_init; the endpoint a matched route
 * is timed as. */
int us_metrics_setup(server_rec *s);
void us_metrics_child_init(void);
us_metrics_slot *us_metrics_here(void);
us_metrics_gauges *us_metrics_gauges_here(void);
us_endpoint us_endpoint_of(const us_route *route, int method);

/* Serves one API request; r's route is already matched (not NONE). */
int us_api_handle(request_rec *r, us_srv_conf *conf, const us_route *route);

#endif
