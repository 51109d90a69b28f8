/*
 * us_s3_conf.c - the s3 backend's configuration (the parameters of
 * UploadSessionStorage s3 and the credentials file they name) and the key
 * layout in the bucket.
 */
#include "us_s3_conf.h"
#include "us_s3_answers.h"

#include <apr_strings.h>
#include <curl/curl.h>

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define DEFAULT_PART_MEMORY (64LL * 1024 * 1024)

/* The [default] keys of an AWS shared-credentials file; NULL or the reason. */
static const char *read_credentials(apr_pool_t *p, const char *path, us_s3_conf *c)
{
    struct stat sb;
    char line[1024];
    int in_default = 0;
    if (stat(path, &sb) != 0)
        return apr_psprintf(p, "credentials file %s: cannot be read (%s)", path, strerror(errno));
    if (sb.st_mode & S_IROTH)
        return apr_psprintf(p, "credentials file %s is world-readable: chmod o-r it", path);
    FILE *f = fopen(path, "r");
    if (!f)
        return apr_psprintf(p, "credentials file %s: cannot be read (%s)", path, strerror(errno));
    while (fgets(line, sizeof(line), f)) {
        char *l = us_s3_trim(line), *eq;
        if (*l == '[') {
            in_default = strcmp(l, "[default]") == 0;
            continue;
        }
        if (!in_default || *l == '#' || *l == ';' || !(eq = strchr(l, '=')))
            continue;
        *eq = '\0';
        const char *k = us_s3_trim(l), *v = us_s3_trim(eq + 1);
        if (strcmp(k, "aws_access_key_id") == 0)
            c->cred.access_key = apr_pstrdup(p, v);
        else if (strcmp(k, "aws_secret_access_key") == 0)
            c->cred.secret_key = apr_pstrdup(p, v);
    }
    fclose(f);
    if (!c->cred.access_key || !*c->cred.access_key || !c->cred.secret_key ||
        !*c->cred.secret_key)
        return apr_psprintf(p, "credentials file %s: no [default] section with "
                               "aws_access_key_id and aws_secret_access_key", path);
    return NULL;
}

/* A bucket name as S3 allows it: 3-63 of a-z 0-9 . - */
static int bucket_ok(const char *b)
{
    size_t n = strlen(b);
    if (n < 3 || n > 63)
        return 0;
    for (const char *s = b; *s; s++)
        if (!(islower((unsigned char)*s) || isdigit((unsigned char)*s) || *s == '.' || *s == '-'))
            return 0;
    return 1;
}

/* params: "<endpoint URL> <bucket> [region=R] [credentials=PATH] [prefix=P]
 * [part_memory=BYTES]" */
apr_status_t us_s3_configure(apr_pool_t *p, const char *data_dir, const char *params,
                             void **conf, const char **err)
{
    char *last = NULL;
    char *words = apr_pstrdup(p, params ? params : "");
    const char *url = apr_strtok(words, " ", &last);
    const char *bucket = url ? apr_strtok(NULL, " ", &last) : NULL;
    const char *creds = NULL, *w;
    apr_int64_t part_memory = DEFAULT_PART_MEMORY;
    us_s3_conf *c = apr_pcalloc(p, sizeof(*c));
    (void)data_dir;
    c->aborts = us_s3_aborts_create(p);
    if (!url || !bucket || strchr(bucket, '=')) {
        *err = "s3 storage expects an endpoint URL and a bucket: s3 http://127.0.0.1:7480 uploads";
        return APR_EINVAL;
    }
    c->cred.region = "us-east-1";
    c->cred.service = "s3";
    c->prefix = "";
    while ((w = apr_strtok(NULL, " ", &last))) {
        if (strncmp(w, "region=", 7) == 0 && w[7])
            c->cred.region = w + 7;
        else if (strncmp(w, "credentials=", 12) == 0 && w[12])
            creds = w + 12;
        else if (strncmp(w, "prefix=", 7) == 0) {
            const char *pre = w + 7;
            while (*pre == '/')
                pre++;
            size_t n = strlen(pre);
            while (n && pre[n - 1] == '/')
                n--;
            c->prefix = n ? apr_pstrcat(p, apr_pstrndup(p, pre, n), "/", NULL) : "";
        }
        else if (strncmp(w, "part_memory=", 12) == 0) {
            char *end = NULL;
            errno = 0;
            part_memory = isdigit((unsigned char)w[12]) ? apr_strtoi64(w + 12, &end, 10) : -1;
            if (part_memory < 0 || *end || errno == ERANGE) {
                *err = apr_psprintf(p, "s3 storage: part_memory expects bytes, not '%s'", w + 12);
                return APR_EINVAL;
            }
        }
        else {
            *err = apr_psprintf(p, "s3 storage: unknown parameter '%s'", w);
            return APR_EINVAL;
        }
    }
    const char *rest = NULL;
    if (strncmp(url, "http://", 7) == 0)
        rest = url + 7;
    else if (strncmp(url, "https://", 8) == 0)
        rest = url + 8;
    size_t hl = rest ? strcspn(rest, "/?#") : 0;
    int bad = !rest || hl == 0 || (rest[hl] && strcmp(rest + hl, "/") != 0);
    for (size_t i = 0; !bad && i < hl; i++)
        bad = !(isalnum((unsigned char)rest[i]) || strchr(".-:[]", rest[i]));
    if (!bad) {
        const char *colon = memchr(rest, ':', hl);
        if (colon && rest[0] != '[') {
            char *end = NULL;
            long port = strtol(colon + 1, &end, 10);
            bad = colon + 1 == end || end != rest + hl || port < 1 || port > 65535;
        }
    }
    if (bad) {
        *err = apr_psprintf(p, "s3 storage: malformed endpoint URL '%s' (expected "
                               "http[s]://host[:port], no path)", url);
        return APR_EINVAL;
    }
    if (!bucket_ok(bucket)) {
        *err = apr_psprintf(p, "s3 storage: malformed bucket name '%s'", bucket);
        return APR_EINVAL;
    }
    if (!creds) {
        *err = "s3 storage needs UploadSessionS3CredentialsFile";
        return APR_EINVAL;
    }
    if ((*err = read_credentials(p, creds, c)))
        return APR_EINVAL;
    /* the scheme's own port left out: curl sends no port in Host then, and
     * the signature covers Host */
    const char *dflt = rest == url + 8 ? ":443" : ":80";
    if (hl > strlen(dflt) && strncmp(rest + hl - strlen(dflt), dflt, strlen(dflt)) == 0)
        hl -= strlen(dflt);
    c->host = apr_pstrndup(p, rest, hl);
    c->endpoint = apr_pstrndup(p, url, (apr_size_t)(rest - url) + hl);
    c->bucket = bucket;
    c->parts = us_s3_budget_create(p, (apr_uint64_t)part_memory);
    /* not /tmp: on a tmpfs (Debian's default since 13) a spilled part is
     * memory again */
    const char *tmpdir = getenv("TMPDIR");
    c->spill_dir = tmpdir && *tmpdir ? apr_pstrdup(p, tmpdir) : "/var/tmp";
    /* before any thread exists: curl_global_init is not thread-safe */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        *err = "s3 storage: libcurl cannot be initialised";
        return APR_EINIT;
    }
    *conf = c;
    return APR_SUCCESS;
}

const char *us_s3_session_prefix(const us_storage *st, apr_pool_t *p, const char *session_id)
{
    return apr_pstrcat(p, us_s3_conf_of(st)->prefix, "sessions/", session_id, "/", NULL);
}

const char *us_s3_upload_key(const us_storage *st, apr_pool_t *p, const char *session_id,
                             const char *blob)
{
    return apr_pstrcat(p, us_s3_session_prefix(st, p, session_id), blob, NULL);
}

const char *us_s3_file_key(const us_storage *st, apr_pool_t *p, const char *file_id)
{
    return apr_pstrcat(p, us_s3_conf_of(st)->prefix, "files/", file_id, NULL);
}
