/* Benchmark workload (3): N times fork, exec /bin/true in the child, wait for it.
 * Writes "START_NS END_NS" (CLOCK_MONOTONIC) to TIMEFILE.
 * Usage: bench_forkexec N TIMEFILE */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: bench_forkexec N TIMEFILE\n");
        return 2;
    }
    long n = atol(argv[1]);
    long long start = now_ns();
    for (long i = 0; i < n; i++) {
        pid_t pid = fork();
        if (pid < 0) return 1;
        if (pid == 0) {
            execl("/bin/true", "true", (char *)NULL);
            _exit(127);
        }
        int status;
        if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) return 1;
    }
    long long end = now_ns();
    FILE *f = fopen(argv[2], "w");
    if (!f) return 1;
    fprintf(f, "%lld %lld\n", start, end);
    return fclose(f) != 0;
}
