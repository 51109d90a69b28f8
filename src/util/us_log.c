/* us_log.c - see us_log.h. */
#include <stdarg.h>

#include <apr_strings.h>

#include "us_log.h"

int us_log_enabled(const us_logger *lg, us_log_level level)
{
    return lg && lg->emit && level <= lg->max_level;
}

void us_log(const us_logger *lg, us_log_level level, apr_status_t status, int msgno,
            const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    if (!us_log_enabled(lg, level))
        return;
    va_start(ap, fmt);
    apr_vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    lg->emit(lg->baton, level, status, msgno, buf);
}
