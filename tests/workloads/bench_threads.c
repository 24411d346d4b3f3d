/* Benchmark workload (2): create and join N threads, one after the other (each thread does
 * nothing). Writes "START_NS END_NS USER_US SYS_US" to TIMEFILE: CLOCK_MONOTONIC around the loop,
 * then the CPU time of the process.
 * Usage: bench_threads N TIMEFILE */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* CPU time of this process in microseconds: user, system. */
static void cpu_us(long long *user, long long *sys) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    *user = ru.ru_utime.tv_sec * 1000000LL + ru.ru_utime.tv_usec;
    *sys = ru.ru_stime.tv_sec * 1000000LL + ru.ru_stime.tv_usec;
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
    long long user, sys;
    cpu_us(&user, &sys);
    fprintf(f, "%lld %lld %lld %lld\n", start, end, user, sys);
    return fclose(f) != 0;
}
