/* data_meter.h - the process's data size, for tests that bound a loop's
 * memory (header-only; include after cmocka.h). Its count says nothing
 * under valgrind (its preload in LD_PRELOAD) or AddressSanitizer: both
 * keep freed blocks aside to catch uses after free and take memory in big
 * pieces. */
#ifndef DATA_METER_H
#define DATA_METER_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif

/* The process's data segment in bytes (/proc/self/statm: heap and private
 * mappings, where APR's allocator takes its nodes, by mmap or malloc). */
static size_t data_bytes(void)
{
    unsigned long fields[6] = { 0 };
    FILE *f = fopen("/proc/self/statm", "r");
    assert_non_null(f);
    assert_int_equal(fscanf(f, "%lu %lu %lu %lu %lu %lu", &fields[0], &fields[1], &fields[2],
                            &fields[3], &fields[4], &fields[5]), 6);
    fclose(f);
    return (size_t)fields[5] * (size_t)sysconf(_SC_PAGESIZE);
}

/* 0 under valgrind or AddressSanitizer (see above). */
static int data_meter_trusted(void)
{
    const char *preload = getenv("LD_PRELOAD");
    return !UNDER_ASAN && !(preload && strstr(preload, "vgpreload"));
}

#endif
