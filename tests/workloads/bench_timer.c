/* Times another program: fork, exec CMD, wait. Writes "START_NS END_NS USER_US SYS_US" to TIMEFILE:
 * CLOCK_MONOTONIC just before the fork and just after the wait, then the CPU time of the reaped
 * command; exits with the command's status. Used for the benchmark's real-program workload
 * (headless Chromium), which cannot time itself.
 * Usage: bench_timer TIMEFILE CMD [ARGS...] */
#include <stdio.h>
#include <sys/wait.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* CPU time of the command (children waited for) in microseconds: user, system. */
static void cpu_us(long long *user, long long *sys) {
    struct rusage ru;
    getrusage(RUSAGE_CHILDREN, &ru);
    *user = ru.ru_utime.tv_sec * 1000000LL + ru.ru_utime.tv_usec;
    *sys = ru.ru_stime.tv_sec * 1000000LL + ru.ru_stime.tv_usec;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: bench_timer TIMEFILE CMD [ARGS...]\n");
        return 2;
    }
    long long start = now_ns();
    pid_t pid = fork();
    if (pid < 0) return 1;
    if (pid == 0) {
        execvp(argv[2], argv + 2);
        perror(argv[2]);
        _exit(127);
    }
    int status;
    if (waitpid(pid, &status, 0) != pid) return 1;
    long long end = now_ns();
    FILE *f = fopen(argv[1], "w");
    if (!f) return 1;
    long long user, sys;
    cpu_us(&user, &sys);
    fprintf(f, "%lld %lld %lld %lld\n", start, end, user, sys);
    fclose(f);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
