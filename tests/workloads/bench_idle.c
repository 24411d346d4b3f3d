/* Benchmark workload (5): idle-heavy. N rounds of: sleep SLEEP_US microseconds, then about 20 us
 * of computation. Measures what being attached costs a program that mostly waits.
 * Writes "START_NS END_NS USER_US SYS_US" (CLOCK_MONOTONIC; CPU time of the process) to TIMEFILE.
 * Usage: bench_idle N SLEEP_US TIMEFILE */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

#include "bench_common.h"

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: bench_idle N SLEEP_US TIMEFILE\n");
        return 2;
    }
    long n = atol(argv[1]);
    long sleep_us = atol(argv[2]);
    volatile unsigned long sink = 0;
    long long start = now_ns();
    for (long i = 0; i < n; i++) {
        struct timespec ts = {sleep_us / 1000000, (sleep_us % 1000000) * 1000};
        nanosleep(&ts, NULL);
        for (int j = 0; j < 20000; j++) sink += (unsigned long)j * (unsigned long)i;
    }
    long long end = now_ns();
    return write_times(argv[3], start, end, RUSAGE_SELF);
}
