/* us_auth.c - API key file parsing and constant-time key lookup (pure). */
#include "us_auth.h"
#include "us_fsync.h"
#include "us_utf8.h"
#include "us_router.h"   /* us_workspace_name_valid */
#include "us_uuid.h"

#include <apr_file_io.h>
#include <apr_lib.h>
#include <apr_hash.h>
#include <apr_strings.h>
#include <openssl/crypto.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define KEYFILE_MAX (16 * 1024 * 1024)

int us_key_field_valid(const char *s)
{
    if (!s || !*s)
        return 0;
    for (const unsigned char *c = (const unsigned char *)s; *c; c++)
        if (*c < 0x20 || *c == 0x7f || *c == ':')
            return 0;
    /* the answers carry the names as JSON strings: UTF-8 only */
    return us_utf8_valid(s);
}

static int hex_decode(const char *hex, unsigned char *out, size_t n)
{
    if (strlen(hex) != 2 * n)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned int b;
        if (sscanf(hex + 2 * i, "%2x", &b) != 1 || !apr_isxdigit(hex[2 * i]) ||
            !apr_isxdigit(hex[2 * i + 1]))
            return 0;
        out[i] = (unsigned char)b;
    }
    return 1;
}

static int parse_grants(apr_pool_t *p, char *grants, us_key *k)
{
    k->workspaces = apr_array_make(p, 4, sizeof(const char *));
    if (strcmp(grants, "*") == 0) {
        k->all_workspaces = 1;
        return 1;
    }
    /* split by hand: apr_strtok would silently skip empty names ("a,,b") */
    for (char *w = grants; w;) {
        char *comma = strchr(w, ',');
        if (comma)
            *comma = '\0';
        if (!us_workspace_name_valid(w))
            return 0;
        APR_ARRAY_PUSH(k->workspaces, const char *) = w;
        w = comma ? comma + 1 : NULL;
    }
    return 1;
}

int us_key_label_valid(const char *s)
{
    return s && (*s == '\0' || us_key_field_valid(s));
}

int us_key_time_parse(const char *s, apr_time_t *out)
{
    apr_time_exp_t tm;
    int y, mo, d, h, mi, se;
    char t, z, extra;

    if (strlen(s) != 16 ||
        sscanf(s, "%4d%2d%2d%c%2d%2d%2d%c%c", &y, &mo, &d, &t, &h, &mi, &se, &z, &extra) != 8 ||
        t != 'T' || z != 'Z')
        return 0;
    for (const char *c = s; *c; c++)
        if (!apr_isdigit(*c) && c - s != 8 && c - s != 15)
            return 0;
    static const int days[12] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (mo < 1 || mo > 12 || d < 1 || d > days[mo - 1] || (mo == 2 && d == 29 && !leap) ||
        h > 23 || mi > 59 || se > 60)
        return 0; /* an impossible date would roll over into another day */
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = se;
    return apr_time_exp_gmt_get(out, &tm) == APR_SUCCESS;
}

void us_key_time_format(apr_time_t t, char out[17])
{
    apr_time_exp_t tm;
    apr_size_t n = 0;
    apr_time_exp_gmt(&tm, t);
    if (apr_strftime(out, &n, 17, "%Y%m%dT%H%M%SZ", &tm) != APR_SUCCESS || n != 16)
        out[0] = '\0';
}

/* Parses one non-comment line; returns NULL or what is wrong with it. */
static const char *parse_line(apr_pool_t *p, char *line, us_key *k)
{
    char *f[9];
    char uuid[37], reason[128];
    int n = 0;

    for (char *s = line; s && n < 9;) {
        char *colon = strchr(s, ':');
        if (colon)
            *colon = '\0';
        f[n++] = s;
        s = colon ? colon + 1 : NULL;
    }
    if (n != 5 && n != 8)
        return "expected 5 fields (sha256:user_id:given_name:family_name:grants) "
               "or 8 (...:label:created:expires)";
    if (!hex_decode(f[0], k->digest, US_SHA256_LEN))
        return "field 1 must be the 64-hex-digit SHA-256 of the key";
    if (!us_uuid_parse(f[1], uuid, reason, sizeof(reason)))
        return "field 2 (user_id) must be a UUID";
    if (!us_utf8_valid(f[2]))
        return "field 3 (given_name) is not valid UTF-8 (Latin-1? save the key file as UTF-8)";
    if (!us_utf8_valid(f[3]))
        return "field 4 (family_name) is not valid UTF-8 (Latin-1? save the key file as UTF-8)";
    if (!us_key_field_valid(f[2]) || !us_key_field_valid(f[3]))
        return "given_name and family_name must be non-empty";
    k->user_id = apr_pstrdup(p, uuid);
    k->given_name = f[2];
    k->family_name = f[3];
    for (int i = 0; i < US_KEY_ID_LEN; i++)
        k->id[i] = (char)apr_tolower(f[0][i]);
    k->id[US_KEY_ID_LEN] = '\0';
    k->label = "";
    if (!parse_grants(p, f[4], k))
        return "field 5 must be '*' or a comma-separated list of workspace names";
    if (n == 5)
        return NULL;
    if (!us_key_label_valid(f[5]))
        return "field 6 (label) must be UTF-8 without control characters";
    k->label = f[5];
    if (*f[6] && !us_key_time_parse(f[6], &k->created))
        return "field 7 (created) must be empty or a UTC time as YYYYMMDDTHHMMSSZ";
    if (*f[7] && !us_key_time_parse(f[7], &k->expires))
        return "field 8 (expires) must be empty or a UTC time as YYYYMMDDTHHMMSSZ";
    return NULL;
}

int us_keyring_parse(apr_pool_t *p, const char *text, size_t len,
                     us_keyring **out, char *err, size_t errlen)
{
    us_keyring *kr = apr_pcalloc(p, sizeof(*kr));
    char *buf = apr_pstrmemdup(p, text, len);
    char *save = NULL;
    int lineno = 0;

    apr_hash_t *seen = apr_hash_make(p); /* digest -> its line number */
    kr->keys = apr_array_make(p, 8, sizeof(us_key));
    if (memchr(text, '\0', len)) {
        snprintf(err, errlen, "contains a NUL byte");
        return 0;
    }
    /* apr_strtok would skip empty lines and lose the numbering: walk by hand */
    for (char *line = buf; line; line = save) {
        char *nl = strchr(line, '\n');
        save = nl ? nl + 1 : NULL;
        if (nl)
            *nl = '\0';
        lineno++;
        size_t l = strlen(line);
        if (l && line[l - 1] == '\r')
            line[--l] = '\0';
        while (*line == ' ' || *line == '\t')
            line++;
        if (*line == '\0' || *line == '#')
            continue;
        us_key k;
        memset(&k, 0, sizeof(k));
        const char *why = parse_line(p, line, &k);
        if (why) {
            snprintf(err, errlen, "line %d: %s", lineno, why);
            return 0;
        }
        /* one key, one user: a second line would silently win the lookup */
        const int *first = apr_hash_get(seen, k.digest, US_SHA256_LEN);
        if (first) {
            snprintf(err, errlen, "line %d: the key of line %d is listed again", lineno, *first);
            return 0;
        }
        int *at = apr_palloc(p, sizeof(*at));
        *at = lineno;
        APR_ARRAY_PUSH(kr->keys, us_key) = k;
        apr_hash_set(seen, apr_pmemdup(p, k.digest, US_SHA256_LEN), US_SHA256_LEN, at);
    }
    *out = kr;
    return 1;
}

int us_keyring_load(apr_pool_t *p, const char *path, us_keyring **out,
                    char *err, size_t errlen)
{
    apr_file_t *f;
    apr_finfo_t fi;
    apr_status_t rv;
    char ebuf[120];

    rv = apr_file_open(&f, path, APR_FOPEN_READ, APR_OS_DEFAULT, p);
    if (rv == APR_SUCCESS)
        rv = apr_file_info_get(&fi, APR_FINFO_SIZE, f);
    if (rv != APR_SUCCESS) {
        snprintf(err, errlen, "cannot read %s: %s", path,
                 apr_strerror(rv, ebuf, sizeof(ebuf)));
        return 0;
    }
    if (fi.size > KEYFILE_MAX) {
        apr_file_close(f);
        snprintf(err, errlen, "%s is larger than %d bytes", path, KEYFILE_MAX);
        return 0;
    }
    char *buf = apr_palloc(p, (apr_size_t)fi.size + 1);
    apr_size_t got = 0;
    rv = fi.size ? apr_file_read_full(f, buf, (apr_size_t)fi.size, &got) : APR_SUCCESS;
    apr_file_close(f);
    if (rv != APR_SUCCESS) {
        snprintf(err, errlen, "cannot read %s: %s", path,
                 apr_strerror(rv, ebuf, sizeof(ebuf)));
        return 0;
    }
    return us_keyring_parse(p, buf, got, out, err, errlen);
}

const us_key *us_keyring_lookup(const us_keyring *kr, const char *presented)
{
    unsigned char d[US_SHA256_LEN];
    const us_key *found = NULL;

    if (!kr || !presented)
        return NULL;
    us_sha256(presented, strlen(presented), d);
    /* no early exit: every entry costs the same */
    for (int i = 0; i < kr->keys->nelts; i++) {
        const us_key *k = &APR_ARRAY_IDX(kr->keys, i, us_key);
        int eq = CRYPTO_memcmp(k->digest, d, US_SHA256_LEN) == 0;
        found = eq ? k : found;
    }
    return found;
}

int us_key_grants(const us_key *k, const char *workspace)
{
    if (k->all_workspaces)
        return 1;
    for (int i = 0; i < k->workspaces->nelts; i++)
        if (strcmp(APR_ARRAY_IDX(k->workspaces, i, const char *), workspace) == 0)
            return 1;
    return 0;
}

static void key_hex(const char *key, char hex[2 * US_SHA256_LEN + 1])
{
    unsigned char d[US_SHA256_LEN];
    us_sha256(key, strlen(key), d);
    for (int i = 0; i < US_SHA256_LEN; i++)
        snprintf(hex + 2 * i, 3, "%02x", d[i]);
}

char *us_key_line(apr_pool_t *p, const char *key, const char *user_id,
                  const char *given, const char *family, const char *grants)
{
    char hex[2 * US_SHA256_LEN + 1];
    key_hex(key, hex);
    return apr_psprintf(p, "%s:%s:%s:%s:%s\n", hex, user_id, given, family, grants);
}

char *us_key_line_full(apr_pool_t *p, const char *key, const char *user_id,
                       const char *given, const char *family, const char *grants,
                       const char *label, apr_time_t created, apr_time_t expires)
{
    char hex[2 * US_SHA256_LEN + 1], c[17] = "", e[17] = "";
    key_hex(key, hex);
    if (created)
        us_key_time_format(created, c);
    if (expires)
        us_key_time_format(expires, e);
    return apr_psprintf(p, "%s:%s:%s:%s:%s:%s:%s:%s\n", hex, user_id, given, family, grants,
                        label, c, e);
}

int us_key_expired(const us_key *k, apr_time_t now)
{
    return k->expires != 0 && now >= k->expires;
}

char *us_keyfile_without(apr_pool_t *p, const char *text, size_t len, const char *which,
                         int *removed)
{
    char *out = apr_palloc(p, len + 1);
    size_t o = 0;
    *removed = 0;
    for (size_t i = 0; i < len;) {
        const char *nl = memchr(text + i, '\n', len - i);
        size_t end = nl ? (size_t)(nl - text) + 1 : len;
        char *line = apr_pstrmemdup(p, text + i, end - i);
        char *t = line;
        while (*t == ' ' || *t == '\t')
            t++;
        int drop = 0;
        if (*t && *t != '#' && *t != '\n' && *t != '\r') {
            us_key k;
            size_t l = strlen(t);
            while (l && (t[l - 1] == '\n' || t[l - 1] == '\r'))
                t[--l] = '\0';
            memset(&k, 0, sizeof(k));
            if (parse_line(p, t, &k) == NULL &&
                (strcasecmp(k.id, which) == 0 || (*k.label && strcmp(k.label, which) == 0)))
                drop = 1;
        }
        if (drop) {
            (*removed)++;
        }
        else {
            memcpy(out + o, text + i, end - i);
            o += end - i;
        }
        i = end;
    }
    out[o] = '\0';
    return out;
}

int us_keyfile_replace(const char *path, const char *text, size_t len)
{
    struct stat st;
    mode_t mode = 0600;
    int have = stat(path, &st) == 0;
    char *tmp = malloc(strlen(path) + 16);
    int fd = -1, rc = -1, saved;

    if (!tmp)
        goto out;
    /* beside the file: rename(2) within one file system is atomic */
    snprintf(tmp, strlen(path) + 16, "%s.tmp.XXXXXX", path);
    if ((fd = mkstemp(tmp)) < 0)
        goto out;
    if (have) {
        mode = st.st_mode & 07777;
        if (fchown(fd, st.st_uid, st.st_gid) != 0 && geteuid() == 0)
            goto unlink;
    }
    if (fchmod(fd, mode) != 0)
        goto unlink;
    for (size_t w = 0; w < len;) {
        ssize_t n = write(fd, text + w, len - w);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            goto unlink;
        }
        w += (size_t)n;
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        fd = -1;
        goto unlink;
    }
    fd = -1;
    if (rename(tmp, path) != 0)
        goto unlink;
    (void)us_fsync_parent(path); /* the new name, durable */
    rc = 0;
    goto out;
unlink:
    saved = errno;
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    errno = saved;
out:
    saved = errno;
    free(tmp);
    errno = saved;
    return rc;
}

const char *us_bearer_token(apr_pool_t *p, const char *header)
{
    const char *s = header;
    if (!s)
        return NULL;
    while (*s == ' ' || *s == '\t')
        s++;
    /* scheme is case-insensitive (RFC 7235), like FastAPI's HTTPBearer */
    if (strncasecmp(s, "bearer", 6) != 0 || (s[6] != ' ' && s[6] != '\t'))
        return NULL;
    s += 6;
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    if (n == 0)
        return NULL;
    return apr_pstrmemdup(p, s, n);
}
