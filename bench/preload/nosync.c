/*
 * nosync.c - LD_PRELOAD for a benchmark's bound: fsync and fdatasync
 * return at once, so a process run with it writes without waiting for the
 * disk. Durability is gone; only b1's "without the durable sync" pair uses
 * it, to measure the share of a close that is its sync.
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
