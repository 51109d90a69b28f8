/*
 * us_log.h - the one logging seam below src/httpd: the core, the store and
 * the storage backends log through a us_logger, which the module points at
 * httpd's error log. Every message has a level, the APR status it is about
 * (0 when none) and a number of its own, printed as "USnnnn: " like httpd's
 * AHnnnnn, so an operator can grep for one message. Ranges: 00xx-09xx the
 * httpd glue (USLOGNO in src/httpd), 10xx ingestion, 11xx the store, 12xx
 * file storage, 13xx webhook delivery, 14xx the API keys (us_keystore). Pure
 * (APR only); a NULL logger or emit drops everything.
 */
#ifndef US_LOG_H
#define US_LOG_H

#include <apr_errno.h>

typedef enum { US_LOG_ERR = 0, US_LOG_WARN, US_LOG_INFO, US_LOG_DEBUG } us_log_level;

typedef struct us_logger {
    /* msg is formatted already, without the "USnnnn: " prefix */
    void (*emit)(void *baton, us_log_level level, apr_status_t status, int msgno,
                 const char *msg);
    void *baton;
    us_log_level max_level; /* messages above it are neither formatted nor emitted */
} us_logger;

/* Whether a message at level would be emitted (to skip costly arguments). */
int us_log_enabled(const us_logger *lg, us_log_level level);

/* Formats (at most 1 KiB, truncated beyond) and emits one message. */
void us_log(const us_logger *lg, us_log_level level, apr_status_t status, int msgno,
            const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 5, 6)))
#endif
    ;

#endif
