// mprotect_then_spin: pinned to CPU 0 at real-time priority (nothing else takes that CPU until the
// kernel's real-time throttling does, after 0.95 s), a mapping of an unusual length (0x123000
// bytes) protected three times, then a busy loop with no syscall at all for argv[1] seconds (the
// clock is read through the vDSO). The mprotect records (compact: three arguments) are held on the
// CPU's stage; while the thread keeps its CPU only observer's periodic flush brings them out.
#define _GNU_SOURCE
#include <sched.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    double seconds = argc > 1 ? atof(argv[1]) : 6.0;
    cpu_set_t cpus;
    CPU_ZERO(&cpus);
    CPU_SET(0, &cpus);
    sched_setaffinity(0, sizeof cpus, &cpus);
    struct sched_param fifo = {.sched_priority = 1};
    sched_setscheduler(0, SCHED_FIFO, &fifo);
    char *map = mmap(NULL, 0x123000, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    for (int i = 0; i < 3; i++)
        mprotect(map, 0x123000, i % 2 ? PROT_READ | PROT_WRITE : PROT_READ);
    double end = now() + seconds;
    volatile unsigned long spins = 0;
    while (now() < end)
        spins++;
    return 0;
}
