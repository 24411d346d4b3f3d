/* Benchmark workload (1): N mprotect calls in one thread, toggling one page between read-only and
 * read-write. Writes "START_NS END_NS USER_US SYS_US" to TIMEFILE: CLOCK_MONOTONIC around the loop,
 * then the CPU time of the process.
 * Usage: bench_mprotect N TIMEFILE */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>

#include "bench_common.h"

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: bench_mprotect N TIMEFILE\n");
        return 2;
    }
    long n = atol(argv[1]);
    char *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (page == MAP_FAILED) return 1;
    page[0] = 1;
    long long start = now_ns();
    for (long i = 0; i < n; i++) {
        if (mprotect(page, 4096, (i & 1) ? PROT_READ | PROT_WRITE : PROT_READ) != 0) return 1;
    }
    long long end = now_ns();
    return write_times(argv[2], start, end, RUSAGE_SELF);
}
