/*
 * b9_disk_small_files.c - what the disk allows for many small durable
 * files, with the durability an upload of ours has before its answer.
 *
 *   b9_disk_small_files DIR N THREADS SYNC [LOG]
 *
 * THREADS threads create N files of 4 KiB in DIR (a fresh directory), each
 * under its final name: create, write, SYNC (fsync | fdatasync | none) of
 * the file (none: no sync at all), then a directory fsync that started after the file's create
 * (shared: one fsync covers every file created before it started, as
 * src/storage/posix/us_dirsync.c does), then, with LOG=1, a 128-byte record
 * appended to DIR/log and an fdatasync of it that started after the append
 * (shared likewise: the store's group commit of the WAL). Prints one JSON
 * line: files/s, and the syncs per file of each kind. Not part of make test.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SIZE 4096

/* a sync shared by whoever waits for one that started after their ticket */
typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    long started, done;
    int running;
    long count;
} group;

static const char *dir;
static int nfiles, sync_mode, with_log, dirfd_, logfd;
static long next_file;
static pthread_mutex_t next_mu = PTHREAD_MUTEX_INITIALIZER;
static group gdir = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0, 0 };
static group glog = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0, 0 };

static long ticket(group *g)
{
    pthread_mutex_lock(&g->mu);
    long t = g->started;
    pthread_mutex_unlock(&g->mu);
    return t;
}

/* Waits until a sync of fd that started at or after ticket t is done,
 * running one when none is running. */
static void group_sync(group *g, int fd, long t, int data_only)
{
    pthread_mutex_lock(&g->mu);
    while (g->done <= t) {
        if (g->running) {
            pthread_cond_wait(&g->cv, &g->mu);
            continue;
        }
        g->running = 1;
        long gen = g->started++;
        g->count++;
        pthread_mutex_unlock(&g->mu);
        if ((data_only ? fdatasync(fd) : fsync(fd)) != 0) {
            perror("b9: sync");
            exit(1);
        }
        pthread_mutex_lock(&g->mu);
        g->running = 0;
        g->done = gen + 1;
        pthread_cond_broadcast(&g->cv);
    }
    pthread_mutex_unlock(&g->mu);
}

static void *worker(void *arg)
{
    char path[4096], buf[SIZE], rec[128];
    memset(buf, 'x', sizeof(buf));
    memset(rec, 'r', sizeof(rec));
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&next_mu);
        long i = next_file < nfiles ? next_file++ : -1;
        pthread_mutex_unlock(&next_mu);
        if (i < 0)
            return NULL;
        snprintf(path, sizeof(path), "%s/f%08ld", dir, i);
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
        long t = ticket(&gdir);
        if (fd < 0 || write(fd, buf, SIZE) != SIZE) {
            perror("b9: create/write");
            exit(1);
        }
        if ((sync_mode == 1 && fsync(fd) != 0) || (sync_mode == 2 && fdatasync(fd) != 0)) {
            perror("b9: file sync");
            exit(1);
        }
        close(fd);
        if (sync_mode)
            group_sync(&gdir, dirfd_, t, 0);
        if (with_log) {
            pthread_mutex_lock(&glog.mu);
            long lt = glog.started;
            if (write(logfd, rec, sizeof(rec)) != (ssize_t)sizeof(rec)) {
                perror("b9: log");
                exit(1);
            }
            pthread_mutex_unlock(&glog.mu);
            group_sync(&glog, logfd, lt, 1);
        }
    }
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: b9_disk_small_files DIR N THREADS fsync|fdatasync|none [LOG]\n");
        return 2;
    }
    dir = argv[1];
    nfiles = atoi(argv[2]);
    int threads = atoi(argv[3]);
    sync_mode = strcmp(argv[4], "fsync") == 0 ? 1 : strcmp(argv[4], "fdatasync") == 0 ? 2 : 0;
    with_log = argc > 5 && strcmp(argv[5], "1") == 0;
    if (threads < 1 || threads > 256 || nfiles < 1) {
        fprintf(stderr, "b9: bad arguments\n");
        return 2;
    }
    dirfd_ = open(dir, O_RDONLY | O_DIRECTORY);
    char lp[4096];
    snprintf(lp, sizeof(lp), "%s/log", dir);
    logfd = with_log ? open(lp, O_WRONLY | O_CREAT | O_APPEND, 0644) : -1;
    if (dirfd_ < 0 || (with_log && logfd < 0)) {
        perror("b9: open");
        return 1;
    }
    pthread_t th[256];
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < threads; i++)
        pthread_create(&th[i], NULL, worker, NULL);
    for (int i = 0; i < threads; i++)
        pthread_join(th[i], NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double dt = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("{\"files\": %d, \"threads\": %d, \"sync\": \"%s\", \"log\": %d, \"seconds\": %.3f,"
           " \"files_per_s\": %.0f, \"dir_syncs_per_file\": %.3f, \"log_syncs_per_file\": %.3f}\n",
           nfiles, threads, argv[4], with_log, dt, nfiles / dt, (double)gdir.count / nfiles,
           (double)glog.count / nfiles);
    return 0;
}
