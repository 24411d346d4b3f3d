/* Benchmark workload (2): create and join N threads, one after the other (each thread does
 * nothing). Writes "START_NS END_NS" (CLOCK_MONOTONIC) to TIMEFILE.
 * Usage: bench_threads N TIMEFILE */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

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
    FILE *f = fopen(argv[2], "w");
    if (!f) return 1;
    fprintf(f, "%lld %lld\n", start, end);
    return fclose(f) != 0;
}
