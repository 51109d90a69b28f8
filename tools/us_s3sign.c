/*
 * us-s3sign - signs S3 requests with us_sigv4, for tests and for trying an
 * object store by hand. The credentials come from the environment, never
 * the command line: US_S3_ACCESS_KEY, US_S3_SECRET_KEY, US_S3_REGION
 * (default us-east-1); US_S3_NOW (Unix seconds) replaces the clock.
 *
 *   us-s3sign request METHOD URL [PAYLOAD_SHA256|UNSIGNED-PAYLOAD] [HEADER: VALUE]...
 *       prints the headers to send, one "Name: value" a line (Host,
 *       x-amz-date, x-amz-content-sha256, the given ones, Authorization)
 *   us-s3sign presign METHOD URL EXPIRES_SECONDS
 *       prints the presigned URL
 *   us-s3sign post BUCKET KEY_PREFIX MAX_BYTES EXPIRES_IN_SECONDS
 *       prints the POST policy's form fields as a JSON object
 *
 * URL is http(s)://host[:port]/path[?query], its path and query encoded
 * as they are sent.
 */
#include "us_json_writer.h"
#include "us_policy.h"
#include "us_sigv4.h"

#include <apr_general.h>
#include <apr_strings.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(void)
{
    fprintf(stderr,
            "usage: us-s3sign request METHOD URL [PAYLOAD_SHA256|UNSIGNED-PAYLOAD] [HEADER: VALUE]...\n"
            "       us-s3sign presign METHOD URL EXPIRES_SECONDS\n"
            "       us-s3sign post BUCKET KEY_PREFIX MAX_BYTES EXPIRES_IN_SECONDS\n"
            "env:   US_S3_ACCESS_KEY, US_S3_SECRET_KEY, US_S3_REGION (us-east-1), US_S3_NOW\n");
    exit(2);
}

typedef struct {
    const char *host;   /* host[:port], the Host header */
    const char *path;   /* "/" at least */
    const char *query;  /* NULL for none */
} url_parts;

static int split_url(apr_pool_t *p, const char *url, url_parts *u)
{
    const char *s = strstr(url, "://");
    if (!s)
        return 0;
    s += 3;
    size_t hlen = strcspn(s, "/?");
    if (hlen == 0)
        return 0;
    u->host = apr_pstrmemdup(p, s, hlen);
    s += hlen;
    const char *q = strchr(s, '?');
    u->path = q ? apr_pstrmemdup(p, s, (apr_size_t)(q - s)) : s;
    if (!*u->path)
        u->path = "/";
    u->query = q ? q + 1 : NULL;
    return 1;
}

int main(int argc, const char *const *argv)
{
    apr_pool_t *p;
    us_sigv4_credentials c;
    char date[17];

    apr_app_initialize(&argc, &argv, NULL);
    atexit(apr_terminate);
    apr_pool_create(&p, NULL);
    if (argc < 2)
        usage();
    c.access_key = getenv("US_S3_ACCESS_KEY");
    c.secret_key = getenv("US_S3_SECRET_KEY");
    c.region = getenv("US_S3_REGION") ? getenv("US_S3_REGION") : "us-east-1";
    c.service = "s3";
    if (!c.access_key || !c.secret_key) {
        fprintf(stderr, "us-s3sign: set US_S3_ACCESS_KEY and US_S3_SECRET_KEY\n");
        return 2;
    }
    apr_time_t now = getenv("US_S3_NOW")
                         ? apr_time_from_sec(apr_atoi64(getenv("US_S3_NOW")))
                         : apr_time_now();
    us_policy_amz_date(now, date);

    if (strcmp(argv[1], "request") == 0 && argc >= 4) {
        url_parts u;
        if (!split_url(p, argv[3], &u))
            usage();
        const char *payload = argc > 4 ? argv[4] : US_SIGV4_UNSIGNED_PAYLOAD;
        int n = 3 + (argc > 5 ? argc - 5 : 0);
        us_sigv4_header *h = apr_pcalloc(p, (apr_size_t)n * sizeof(*h));
        h[0] = (us_sigv4_header){ "Host", u.host };
        h[1] = (us_sigv4_header){ "x-amz-date", date };
        h[2] = (us_sigv4_header){ "x-amz-content-sha256", payload };
        for (int i = 5; i < argc; i++) {
            const char *colon = strchr(argv[i], ':');
            if (!colon)
                usage();
            h[3 + i - 5].name = apr_pstrmemdup(p, argv[i], (apr_size_t)(colon - argv[i]));
            h[3 + i - 5].value = colon + 1 + strspn(colon + 1, " \t");
        }
        us_sigv4_request req = { argv[2], u.path, u.query, h, n, payload };
        us_sigv4_signed s;
        if (!us_sigv4_sign_request(p, &c, date, &req, &s)) {
            fprintf(stderr, "us-s3sign: cannot sign: a malformed header or query\n");
            return 1;
        }
        for (int i = 0; i < n; i++)
            printf("%s: %s\n", h[i].name, h[i].value);
        printf("Authorization: %s\n", s.authorization);
        return 0;
    }
    if (strcmp(argv[1], "presign") == 0 && argc == 5) {
        url_parts u;
        if (!split_url(p, argv[3], &u))
            usage();
        const char *q = us_sigv4_presign_query(p, &c, date, argv[2], u.host, u.path, u.query,
                                               atol(argv[4]));
        if (!q) {
            fprintf(stderr, "us-s3sign: cannot sign: a malformed query\n");
            return 1;
        }
        const char *scheme_end = strstr(argv[3], "://");
        printf("%.*s://%s%s?%s\n", (int)(scheme_end - argv[3]), argv[3], u.host, u.path, q);
        return 0;
    }
    if (strcmp(argv[1], "post") == 0 && argc == 6) {
        us_policy_fields f;
        us_json_writer w;
        apr_size_t len;
        apr_time_t expires = now + apr_time_from_sec(apr_atoi64(argv[5]));
        us_sigv4_post_policy(p, &c, argv[2], argv[3], expires, apr_atoi64(argv[4]), now, &f);
        us_json_write_init(&w, p, 1024);
        us_json_write_object_open(&w);
        us_json_write_key_string(&w, "key", f.key);
        us_json_write_key_string(&w, "policy", f.policy);
        us_json_write_key_string(&w, "x-amz-algorithm", f.algorithm);
        us_json_write_key_string(&w, "x-amz-credential", f.credential);
        us_json_write_key_string(&w, "x-amz-date", f.date);
        us_json_write_key_string(&w, "x-amz-signature", f.signature);
        us_json_write_object_close(&w);
        const char *text = us_json_write_finish(&w, &len);
        if (!text) {
            fprintf(stderr, "us-s3sign: the key prefix is not UTF-8\n");
            return 1;
        }
        printf("%s\n", text);
        return 0;
    }
    usage();
    return 2;
}
