/* Benchmark workload (5): idle-heavy. N rounds of: sleep SLEEP_US microseconds, then about 20 us
 * of computation. Measures what being attached costs a program that mostly waits.
 * Writes "START_NS END_NS" (CLOCK_MONOTONIC) to TIMEFILE.
 * Usage: bench_idle N SLEEP_US TIMEFILE */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

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
    FILE *f = fopen(argv[3], "w");
    if (!f) return 1;
    fprintf(f, "%lld %lld\n", start, end);
    return fclose(f) != 0;
}
