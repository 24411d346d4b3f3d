/* Shared by the benchmark workloads: the clock around the measured work, the process's CPU time,
 * and the time file each one writes ("START_NS END_NS USER_US SYS_US", CLOCK_MONOTONIC and
 * getrusage) for `cargo xtask bench` to read. */
#include <stdio.h>
#include <sys/resource.h>
#include <time.h>

__attribute__((unused)) static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* CPU time in microseconds, user and system, of this process (RUSAGE_SELF) or of the children
 * it waited for (RUSAGE_CHILDREN). */
__attribute__((unused)) static void cpu_us(int who, long long *user, long long *sys) {
    struct rusage ru;
    getrusage(who, &ru);
    *user = ru.ru_utime.tv_sec * 1000000LL + ru.ru_utime.tv_usec;
    *sys = ru.ru_stime.tv_sec * 1000000LL + ru.ru_stime.tv_usec;
}

/* Writes the time file with the CPU time of `who`; returns 0, or 1 when it cannot be written. */
__attribute__((unused)) static int write_times(const char *path, long long start, long long end, int who) {
    FILE *f = fopen(path, "w");
    if (!f) return 1;
    long long user, sys;
    cpu_us(who, &user, &sys);
    fprintf(f, "%lld %lld %lld %lld\n", start, end, user, sys);
    return fclose(f) != 0;
}
