/* Benchmark workload (2): create and join N threads, one after the other (each thread does
 * nothing). Writes "START_NS END_NS USER_US SYS_US" to TIMEFILE: CLOCK_MONOTONIC around the loop,
 * then the CPU time of the process.
 * Usage: bench_threads N TIMEFILE */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

#include "bench_common.h"

static void *work(void *arg) { return arg; }

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: bench_threads N TIMEFILE\n");
        return 2;
    }
    long n = atol(argv[1]);
    long long start = now_ns();
    for (long i = 0; i < n; i++) {
        pthread_t t;
        if (pthread_create(&t, NULL, work, NULL) != 0) return 1;
        if (pthread_join(t, NULL) != 0) return 1;
    }
    long long end = now_ns();
    return write_times(argv[2], start, end, RUSAGE_SELF);
}
