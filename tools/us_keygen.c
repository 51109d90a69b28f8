/*
 * us-keygen - mints an API key and appends its hashed line to a key file,
 * like htpasswd. The key itself is printed once and never stored.
 *
 *   us-keygen -f KEYFILE -g GIVEN -F FAMILY [-w WS[,WS...] | -w '*'] [-u USER_ID]
 */
#include "us_uuid.h"
#include "us_auth.h"

#include <apr_file_io.h>
#include <apr_general.h>
#include <apr_getopt.h>
#include <apr_strings.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(void)
{
    fprintf(stderr,
            "usage: us-keygen -f KEYFILE -g GIVEN_NAME -F FAMILY_NAME [-w WORKSPACES] [-u USER_ID]\n"
            "  -w  '*' (default) or a comma-separated list of workspace names\n"
            "  -u  the user's UUID (default: a new random one)\n"
            "Prints the new API key; appends its SHA-256 line to KEYFILE (created 0600).\n");
    exit(2);
}

int main(int argc, const char *const *argv)
{
    apr_pool_t *p;
    apr_getopt_t *opt;
    const char *file = NULL, *given = NULL, *family = NULL, *grants = "*", *uid = NULL;
    const char *arg;
    char optch, uuid[37], reason[128], err[256];
    unsigned char raw[32];
    us_keyring *kr;

    apr_app_initialize(&argc, &argv, NULL);
    atexit(apr_terminate);
    apr_pool_create(&p, NULL);
    apr_getopt_init(&opt, p, argc, argv);
    apr_status_t rv;
    while ((rv = apr_getopt(opt, "f:g:F:w:u:h", &optch, &arg)) == APR_SUCCESS) {
        switch (optch) {
        case 'f': file = arg; break;
        case 'g': given = arg; break;
        case 'F': family = arg; break;
        case 'w': grants = arg; break;
        case 'u': uid = arg; break;
        default: usage();
        }
    }
    if (rv != APR_EOF || !file || !given || !family)
        usage();
    if (!us_key_field_valid(given) || !us_key_field_valid(family)) {
        fprintf(stderr, "us-keygen: names must be non-empty UTF-8, without ':' or control characters\n");
        return 2;
    }
    if (uid) {
        if (!us_uuid_parse(uid, uuid, reason, sizeof(reason))) {
            fprintf(stderr, "us-keygen: -u: %s\n", reason);
            return 2;
        }
    }
    else {
        us_uuid4(uuid);
    }
    if (apr_generate_random_bytes(raw, sizeof(raw)) != APR_SUCCESS)
        return 1;
    /* 43 URL-safe characters: 256 bits */
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    char key[4 + 44];
    memcpy(key, "usk_", 4);
    for (int i = 0; i < 43; i++) {
        int bit = i * 6, byte = bit / 8, shift = bit % 8;
        unsigned v = (unsigned)raw[byte] << 8 | (byte + 1 < 32 ? raw[byte + 1] : 0);
        key[4 + i] = alphabet[(v >> (10 - shift)) & 63];
    }
    key[47] = '\0';

    char *line = us_key_line(p, key, uuid, given, family, grants);
    /* the line must parse back, or the server would refuse to start */
    if (!us_keyring_parse(p, line, strlen(line), &kr, err, sizeof(err))) {
        fprintf(stderr, "us-keygen: %s\n", err);
        return 2;
    }
    apr_file_t *f;
    rv = apr_file_open(&f, file, APR_FOPEN_WRITE | APR_FOPEN_CREATE | APR_FOPEN_APPEND,
                       APR_FPROT_UREAD | APR_FPROT_UWRITE, p);
    if (rv == APR_SUCCESS)
        rv = apr_file_puts(line, f);
    if (rv == APR_SUCCESS)
        rv = apr_file_close(f);
    if (rv != APR_SUCCESS) {
        char ebuf[128];
        fprintf(stderr, "us-keygen: %s: %s\n", file, apr_strerror(rv, ebuf, sizeof(ebuf)));
        return 1;
    }
    printf("%s\n", key);
    fprintf(stderr, "us-keygen: user %s (%s %s), workspaces %s\n", uuid, given, family, grants);
    return 0;
}
