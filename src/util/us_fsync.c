/* us_fsync.c - see us_fsync.h. */
#include "us_fsync.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

apr_status_t us_fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return APR_FROM_OS_ERROR(errno);
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    return rc == 0 ? APR_SUCCESS : APR_FROM_OS_ERROR(e);
}

apr_status_t us_fsync_parent(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return us_fsync_dir(".");
    size_t n = slash == path ? 1 : (size_t)(slash - path);
    char dir[PATH_MAX];
    if (n >= sizeof(dir))
        return APR_FROM_OS_ERROR(ENAMETOOLONG);
    memcpy(dir, path, n);
    dir[n] = '\0';
    return us_fsync_dir(dir);
}
