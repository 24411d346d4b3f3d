/* Times another program: fork, exec CMD, wait. Writes "START_NS END_NS" (CLOCK_MONOTONIC, from
 * just before fork to just after the wait) to TIMEFILE, and exits with the command's status.
 * Used for the benchmark's real-program workload (headless Chromium), which cannot time itself.
 * Usage: bench_timer TIMEFILE CMD [ARGS...] */
#include <stdio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
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
    fprintf(f, "%lld %lld\n", start, end);
    fclose(f);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
