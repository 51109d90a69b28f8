/*
 * libFuzzer target: PostgreSQL error messages read by their SQLSTATE
 * (us_pg_errors.c). A message comes from the server or libpq, in any
 * language and verbosity; nothing in it may make the reader go past its end.
 * A SQLSTATE found is five of [0-9A-Z]; the logged text fits its buffer,
 * is terminated and is one line.
 *
 * Input layout: one byte for the text buffer's size (1-256), the message.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "us_pg_errors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t cap = (size_t)data[0] + 1;
    char *msg = malloc(size);
    char *out = malloc(cap);
    if (!msg || !out) {
        free(msg);
        free(out);
        return 0;
    }
    memcpy(msg, data + 1, size - 1);
    msg[size - 1] = '\0';
    char code[6];
    if (us_pg_sqlstate(msg, code)) {
        if (strlen(code) != 5)
            abort();
        for (int i = 0; i < 5; i++)
            if (!((code[i] >= '0' && code[i] <= '9') || (code[i] >= 'A' && code[i] <= 'Z')))
                abort();
    } else if (code[0] != '\0') {
        abort();
    }
    us_pg_err_kind kind = us_pg_error_kind(msg);
    if (kind < US_PG_ERR_OTHER || kind > US_PG_ERR_BROKEN)
        abort();
    us_pg_error_text(msg, out, cap);
    size_t n = strnlen(out, cap);
    if (n >= cap || memchr(out, '\n', n))
        abort();
    free(msg);
    free(out);
    return 0;
}
