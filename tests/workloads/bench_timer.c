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

#include "bench_common.h"

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
    // The command's CPU time: the children this process waited for.
    write_times(argv[1], start, end, RUSAGE_CHILDREN);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
