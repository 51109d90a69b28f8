/*
 * node_registry.c - this node in the store's registry of nodes: its name
 * (UploadSessionNodeName, else the host name), this httpd parent's
 * instance, the machine and boot it runs on, and the name claimed at
 * startup (a live holder elsewhere is a duplicate: a startup error).
 */
#include "lifecycle.h"
#include "us_uuid.h"

#include <http_log.h>
#include <apr_file_io.h>
#include <apr_strings.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

APLOG_USE_MODULE(upload_session);

/* UploadSessionNodeName, or the host name. */
const char *us_node_name_of(apr_pool_t *p, const us_srv_conf *c)
{
    char host[256] = "localhost";
    if (c->node_name)
        return c->node_name;
    apr_gethostname(host, sizeof(host), p);
    return apr_pstrdup(p, host);
}

/* This httpd parent's identity in the registry: made once per process, in
 * the process pool, so a graceful restart (which reloads the module and
 * clears pconf) keeps it. */
const char *us_node_instance(server_rec *s)
{
    void *v = NULL;
    apr_pool_t *pp = s->process->pool;
    apr_pool_userdata_get(&v, "us_node_instance", pp);
    if (!v) {
        char id[37];
        us_uuid4(id);
        v = apr_pstrdup(pp, id);
        apr_pool_userdata_set(v, "us_node_instance", apr_pool_cleanup_null, pp);
    }
    return v;
}

/* The machine as the registry knows it: its name and its boot, so that a
 * parent's pid means something only on the machine and boot that wrote it. */
static const char *node_host(apr_pool_t *p)
{
    char host[256] = "localhost", boot[64] = "";
    apr_file_t *f;
    apr_size_t n = sizeof(boot) - 1;
    apr_gethostname(host, sizeof(host), p);
    if (apr_file_open(&f, "/proc/sys/kernel/random/boot_id", APR_FOPEN_READ, APR_OS_DEFAULT,
                      p) == APR_SUCCESS) {
        if (apr_file_read(f, boot, &n) == APR_SUCCESS)
            boot[n] = '\0';
        apr_file_close(f);
    }
    boot[strcspn(boot, "\n")] = '\0';
    return apr_pstrcat(p, host, "/", boot, NULL);
}

/* A process that exists and is not a zombie (a killed daemon stays one until
 * its reaper gets to it). */
static int pid_running(apr_pool_t *p, long long pid)
{
    char *stat = NULL;
    apr_file_t *f;
    char buf[256];
    apr_size_t n = sizeof(buf) - 1;
    if (pid <= 0 || (kill((pid_t)pid, 0) != 0 && errno != EPERM))
        return 0;
    if (apr_file_open(&f, apr_psprintf(p, "/proc/%" APR_INT64_T_FMT "/stat", (apr_int64_t)pid),
                      APR_FOPEN_READ, APR_OS_DEFAULT, p) != APR_SUCCESS)
        return 1;
    if (apr_file_read(f, buf, &n) == APR_SUCCESS) {
        buf[n] = '\0';
        stat = strrchr(buf, ')'); /* "pid (comm) S ...": the state follows the name */
    }
    apr_file_close(f);
    return !(stat && stat[1] == ' ' && stat[2] == 'Z');
}

/* Claims this node's name in the store's registry. Another live instance
 * holding it with a fresh heartbeat is a duplicate: an error. A holder on
 * this machine whose parent is gone (kill -9, a crash) is replaced at once;
 * one elsewhere only once its heartbeat is older than the lease. */
us_db_rc us_node_claim_name(apr_pool_t *p, server_rec *s, us_srv_conf *c,
                            const char **err)
{
    us_db *db = NULL;
    us_node me = { us_node_name_of(p, c), us_node_instance(s), node_host(p), (long long)getpid(),
                   0 };
    us_node holder;
    apr_interval_time_t ttl = apr_time_from_sec(c->ingest_lease);

    /* no connection otherwise: the parent opens none before it forks */
    if (!us_store_keeps_nodes(c->store_cfg))
        return US_DB_OK;
    us_db_rc rc = us_db_open(p, c->store_cfg, &db, err);
    if (rc != US_DB_OK) {
        *err = apr_pstrcat(p, "UploadSessionStore: ", *err, NULL);
        return rc;
    }
    rc = us_node_claim(db, p, &me, NULL, ttl, &holder);
    if (rc == US_DB_CONFLICT && strcmp(holder.host, me.host) == 0 && !pid_running(p, holder.pid))
        rc = us_node_claim(db, p, &me, holder.instance, ttl, &holder);
    if (rc == US_DB_CONFLICT)
        *err = apr_psprintf(p, "UploadSessionNodeName %s is in use by another node on this store "
                           "(host %s, pid %" APR_INT64_T_FMT ", heartbeat %" APR_TIME_T_FMT " ms ago); give "
                           "this node another name, or start it once that node is gone and "
                           "its heartbeat older than UploadSessionIngestLease (%d s)",
                           me.name, holder.host, (apr_int64_t)holder.pid, apr_time_as_msec(holder.age),
                           c->ingest_lease);
    else if (rc != US_DB_OK)
        *err = apr_pstrcat(p, "UploadSessionStore: node registry: ", us_db_error(db), NULL);
    us_db_close(db);
    return rc;
}
