/*
 * us-keygen - API keys in a key file, like htpasswd: create (mint a key,
 * print it once, add its hashed line), list, revoke. The key itself is
 * never stored. Every change replaces the file atomically (us_keyfile_replace),
 * under an exclusive lock on it, so concurrent runs lose no change and a
 * running server re-reads either the old file or the new one.
 *
 *   us-keygen [create] -f KEYFILE -g GIVEN -F FAMILY [-w WS[,WS...] | -w '*']
 *             [-u USER_ID] [-l LABEL] [-e EXPIRY]
 *   us-keygen list -f KEYFILE
 *   us-keygen revoke -f KEYFILE ID|LABEL
 */
#include "us_uuid.h"
#include "us_auth.h"

#include <apr_file_io.h>
#include <apr_general.h>
#include <apr_getopt.h>
#include <apr_lib.h>
#include <apr_strings.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

static void usage(int rc)
{
    fprintf(rc ? stderr : stdout,
            "usage: us-keygen [create] -f KEYFILE -g GIVEN_NAME -F FAMILY_NAME [-w WORKSPACES]\n"
            "                 [-u USER_ID] [-l LABEL] [-e EXPIRY]\n"
            "       us-keygen list -f KEYFILE\n"
            "       us-keygen revoke -f KEYFILE ID|LABEL\n"
            "create (the default): prints a new API key once and adds its SHA-256 line to\n"
            "  KEYFILE (created 0600; an existing file keeps its mode and owner).\n"
            "  -w  '*' (default) or a comma-separated list of workspace names\n"
            "  -u  the user's UUID (default: a new random one)\n"
            "  -l  a label for the key (UTF-8, no ':'), to list and revoke it by\n"
            "  -e  expiry: a lifetime (90d, 12h, 30m, 3600s) or a UTC time\n"
            "      (YYYY-MM-DD, or YYYYMMDDTHHMMSSZ), in the future, up to 9999;\n"
            "      an expired key is refused (401)\n"
            "list: one line per key: id, label, user_id, name, grants, created, expires\n"
            "  (\"-\" when none; EXPIRED after it). Last use is not recorded.\n"
            "revoke: removes every key whose id (12 hex digits, from list) or label is given.\n"
            "Every change replaces KEYFILE atomically (temp file, fsync, rename); a running\n"
            "server picks it up within about 2 seconds, without a restart.\n");
    exit(rc);
}

/* Opens path and locks it exclusively; retries when the file was replaced
 * while we waited (the lock would be on the old inode). -1 when absent. */
static int lock_file(const char *path, int create)
{
    for (;;) {
        int fd = open(path, O_RDONLY | (create ? O_CREAT : 0), 0600);
        struct stat a, b;
        if (fd < 0)
            return -1;
        if (flock(fd, LOCK_EX) != 0) {
            close(fd);
            return -1;
        }
        if (fstat(fd, &a) == 0 && stat(path, &b) == 0 && a.st_ino == b.st_ino &&
            a.st_dev == b.st_dev)
            return fd;
        close(fd);
    }
}

/* The file's text (NUL-terminated) and its keys; exits on failure. */
static char *read_keys(apr_pool_t *p, const char *path, us_keyring **kr, apr_size_t *len)
{
    char err[512];
    apr_file_t *f;
    apr_finfo_t fi;
    char *buf;

    if (apr_file_open(&f, path, APR_FOPEN_READ, APR_OS_DEFAULT, p) != APR_SUCCESS ||
        apr_file_info_get(&fi, APR_FINFO_SIZE, f) != APR_SUCCESS) {
        fprintf(stderr, "us-keygen: cannot read %s: %s\n", path, strerror(errno));
        exit(1);
    }
    buf = apr_palloc(p, (apr_size_t)fi.size + 1);
    *len = 0;
    if (fi.size && apr_file_read_full(f, buf, (apr_size_t)fi.size, len) != APR_SUCCESS) {
        fprintf(stderr, "us-keygen: cannot read %s\n", path);
        exit(1);
    }
    apr_file_close(f);
    buf[*len] = '\0';
    if (!us_keyring_parse(p, buf, *len, kr, err, sizeof(err))) {
        fprintf(stderr, "us-keygen: %s: %s (fix it first: nothing was changed)\n", path, err);
        exit(1);
    }
    return buf;
}

static void write_keys(const char *path, const char *text)
{
    if (us_keyfile_replace(path, text, strlen(text)) != 0) {
        fprintf(stderr, "us-keygen: cannot write %s: %s\n", path, strerror(errno));
        exit(1);
    }
}

#define EXPIRY_FORMS "a lifetime (90d, 12h, 30m, 3600s) or a UTC time " \
                     "(YYYY-MM-DD or YYYYMMDDTHHMMSSZ)"
/* the key file's last instant: a later one has no YYYYMMDDTHHMMSSZ */
#define EXPIRY_LAST "99991231T235959Z"

/* EXPIRY -> *out, an instant after now and not after EXPIRY_LAST; NULL, or
 * why not (a key written without it would never expire). */
static const char *parse_expiry(apr_pool_t *p, const char *s, apr_time_t now, apr_time_t *out)
{
    apr_time_t t, last;
    char *end;
    int y, m, d;
    char extra;

    if (!us_key_time_parse(EXPIRY_LAST, &last))
        return "the latest expiry cannot be computed";
    char day[32];
    if (us_key_time_parse(s, &t) ||
        (strlen(s) == 10 && sscanf(s, "%4d-%2d-%2d%c", &y, &m, &d, &extra) == 3 &&
         snprintf(day, sizeof(day), "%04d%02d%02dT000000Z", y, m, d) == 16 &&
         us_key_time_parse(day, &t))) {
        if (t <= now)
            return apr_psprintf(p, "%s is not in the future", s);
        *out = t;
        return NULL;
    }
    errno = 0;
    long long n = strtoll(s, &end, 10), unit;
    if (errno == ERANGE && end != s && end[0] != '\0' && end[1] == '\0' && strchr("smhd", *end))
        return apr_psprintf(p, "%s ends after %s, the latest a key file holds", s, EXPIRY_LAST);
    if (errno || n <= 0 || end == s || end[0] == '\0' || end[1] != '\0')
        return apr_psprintf(p, "expected %s", EXPIRY_FORMS);
    switch (*end) {
    case 's': unit = 1; break;
    case 'm': unit = 60; break;
    case 'h': unit = 3600; break;
    case 'd': unit = 86400; break;
    default: return apr_psprintf(p, "expected %s", EXPIRY_FORMS);
    }
    /* in whole seconds, before any multiplication can overflow */
    if (now >= last || n > apr_time_sec(last - now) / unit)
        return apr_psprintf(p, "%s ends after %s, the latest a key file holds", s, EXPIRY_LAST);
    *out = now + apr_time_from_sec(n * unit);
    return NULL;
}

static const char *when(apr_pool_t *p, apr_time_t t)
{
    char out[17];
    if (!t)
        return "-";
    us_key_time_format(t, out);
    return apr_pstrdup(p, out);
}

static int cmd_list(apr_pool_t *p, const char *file)
{
    us_keyring *kr;
    apr_size_t len;
    apr_time_t now = apr_time_now();
    read_keys(p, file, &kr, &len);
    printf("%-12s  %-16s  %-36s  %-24s  %-16s  %-16s  %s\n", "ID", "LABEL", "USER_ID", "NAME",
           "CREATED", "EXPIRES", "GRANTS");
    for (int i = 0; i < kr->keys->nelts; i++) {
        const us_key *k = &APR_ARRAY_IDX(kr->keys, i, us_key);
        const char *grants = k->all_workspaces ? "*" : apr_array_pstrcat(p, k->workspaces, ',');
        printf("%-12s  %-16s  %-36s  %-24s  %-16s  %-16s  %s%s\n", k->id,
               *k->label ? k->label : "-", k->user_id,
               apr_pstrcat(p, k->given_name, " ", k->family_name, NULL), when(p, k->created),
               when(p, k->expires), grants, us_key_expired(k, now) ? "  EXPIRED" : "");
    }
    return 0;
}

static int cmd_revoke(apr_pool_t *p, const char *file, const char *which)
{
    us_keyring *kr;
    apr_size_t len;
    int removed;
    int fd = lock_file(file, 0);
    if (fd < 0) {
        fprintf(stderr, "us-keygen: cannot open %s: %s\n", file, strerror(errno));
        return 1;
    }
    char *text = read_keys(p, file, &kr, &len);
    char *rest = us_keyfile_without(p, text, len, which, &removed);
    if (removed == 0) {
        fprintf(stderr, "us-keygen: no key with id or label '%s' in %s\n", which, file);
        close(fd);
        return 1;
    }
    write_keys(file, rest);
    close(fd);
    fprintf(stderr, "us-keygen: revoked %d key%s\n", removed, removed == 1 ? "" : "s");
    return 0;
}

int main(int argc, const char *const *argv)
{
    apr_pool_t *p;
    apr_getopt_t *opt;
    const char *file = NULL, *given = NULL, *family = NULL, *grants = "*", *uid = NULL;
    const char *label = "", *expiry = NULL, *cmd = "create";
    const char *arg;
    char optch, uuid[37], reason[128], err[256];
    unsigned char raw[32];
    us_keyring *kr;

    apr_app_initialize(&argc, &argv, NULL);
    atexit(apr_terminate);
    apr_pool_create(&p, NULL);
    if (argc > 1 && (strcmp(argv[1], "create") == 0 || strcmp(argv[1], "list") == 0 ||
                     strcmp(argv[1], "revoke") == 0)) {
        cmd = argv[1];
        argv++;
        argc--;
    }
    else if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0)) {
        usage(0);
    }
    apr_getopt_init(&opt, p, argc, argv);
    apr_status_t rv;
    while ((rv = apr_getopt(opt, "f:g:F:w:u:l:e:h", &optch, &arg)) == APR_SUCCESS) {
        switch (optch) {
        case 'f': file = arg; break;
        case 'g': given = arg; break;
        case 'F': family = arg; break;
        case 'w': grants = arg; break;
        case 'u': uid = arg; break;
        case 'l': label = arg; break;
        case 'e': expiry = arg; break;
        case 'h': usage(0); break;
        default: usage(2);
        }
    }
    if (rv != APR_EOF || !file)
        usage(2);
    if (strcmp(cmd, "list") == 0)
        return opt->ind == argc ? cmd_list(p, file) : (usage(2), 2);
    if (strcmp(cmd, "revoke") == 0)
        return opt->ind == argc - 1 ? cmd_revoke(p, file, argv[opt->ind]) : (usage(2), 2);
    if (opt->ind != argc || !given || !family)
        usage(2);
    if (!us_key_field_valid(given) || !us_key_field_valid(family)) {
        fprintf(stderr, "us-keygen: names must be non-empty UTF-8, without ':' or control characters\n");
        return 2;
    }
    if (!us_key_label_valid(label)) {
        fprintf(stderr, "us-keygen: -l: the label must be UTF-8, without ':' or control characters\n");
        return 2;
    }
    apr_time_t now = apr_time_now(), expires = 0;
    const char *why = expiry ? parse_expiry(p, expiry, now, &expires) : NULL;
    if (why) {
        fprintf(stderr, "us-keygen: -e: %s\n", why);
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

    char *line = us_key_line_full(p, key, uuid, given, family, grants, label,
                                  apr_time_from_sec(apr_time_sec(now)), expires);
    /* the line must parse back, or the server would refuse it */
    if (!us_keyring_parse(p, line, strlen(line), &kr, err, sizeof(err))) {
        fprintf(stderr, "us-keygen: %s\n", err);
        return 2;
    }
    int fd = lock_file(file, 1);
    if (fd < 0) {
        fprintf(stderr, "us-keygen: %s: %s\n", file, strerror(errno));
        return 1;
    }
    apr_size_t len;
    us_keyring *old;
    char *text = read_keys(p, file, &old, &len);
    const char *sep = len && text[len - 1] != '\n' ? "\n" : "";
    write_keys(file, apr_pstrcat(p, text, sep, line, NULL));
    close(fd);
    printf("%s\n", key);
    fprintf(stderr, "us-keygen: key %s for user %s (%s %s), workspaces %s%s%s\n",
            APR_ARRAY_IDX(kr->keys, 0, us_key).id, uuid, given, family, grants,
            expires ? ", expires " : "", expires ? when(p, expires) : "");
    return 0;
}
