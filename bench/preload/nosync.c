/*
 * nosync.c - LD_PRELOAD for a benchmark's bound: fsync and fdatasync
 * return at once, so a process run with it writes without waiting for the
 * disk. Durability is gone; only the "without the durable sync" pairs of
 * b1 (the close) and b3 (many small files) use it, to measure the share of
 * those requests that is their syncs.
 */
int fsync(int fd);
int fdatasync(int fd);

int fsync(int fd)
{
    (void)fd;
    return 0;
}

int fdatasync(int fd)
{
    (void)fd;
    return 0;
}
