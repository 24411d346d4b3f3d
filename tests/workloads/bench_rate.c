/* Event-rate generator: THREADS threads together make RATE watched syscalls per second
 * (kill(getpid(), 0): one syscall record each, no signal generated), for SECONDS seconds or until
 * COUNT calls in all, whichever comes first (0 = no limit; RATE 0 = as fast as possible).
 * Pacing is by 1 ms slots with nanosleep, so a paced run leaves the CPU to the reader.
 * Writes "START_NS END_NS USER_US SYS_US CALLS" (CLOCK_MONOTONIC; CPU time of the process) to TIMEFILE.
 * Usage: bench_rate RATE SECONDS COUNT THREADS TIMEFILE */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "bench_common.h"

static double rate_per_thread;
static long long duration_ns, count_per_thread, start_ns;
static pid_t self;

static void *run(void *arg) {
    long long *done_out = arg, done = 0;
    for (;;) {
        long long now = now_ns(), elapsed = now - start_ns;
        if (duration_ns > 0 && elapsed >= duration_ns) break;
        if (count_per_thread > 0 && done >= count_per_thread) break;
        long long due = rate_per_thread > 0 ? (long long)(rate_per_thread * (double)elapsed / 1e9) + 1 : done + 4096;
        if (count_per_thread > 0 && due > count_per_thread) due = count_per_thread;
        if (done >= due) {
            /* Ahead of schedule: sleep to the next 1 ms slot. */
            long long next = start_ns + (elapsed / 1000000 + 1) * 1000000;
            struct timespec ts = {next / 1000000000LL, next % 1000000000LL};
            clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
            continue;
        }
        while (done < due) {
            kill(self, 0);
            done++;
        }
    }
    *done_out = done;
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: bench_rate RATE SECONDS COUNT THREADS TIMEFILE\n");
        return 2;
    }
    double rate = atof(argv[1]);
    double seconds = atof(argv[2]);
    long long count = atoll(argv[3]);
    int threads = atoi(argv[4]);
    if (threads < 1 || threads > 64) return 2;
    rate_per_thread = rate / threads;
    duration_ns = (long long)(seconds * 1e9);
    count_per_thread = count / threads;
    self = getpid();
    pthread_t tids[64];
    long long done[64];
    start_ns = now_ns();
    for (int i = 0; i < threads; i++)
        if (pthread_create(&tids[i], NULL, run, &done[i]) != 0) return 1;
    long long total = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(tids[i], NULL);
        total += done[i];
    }
    long long end = now_ns();
    FILE *f = fopen(argv[5], "w");
    if (!f) return 1;
    long long user, sys;
    cpu_us(RUSAGE_SELF, &user, &sys);
    fprintf(f, "%lld %lld %lld %lld %lld\n", start_ns, end, user, sys, total);
    return fclose(f) != 0;
}
