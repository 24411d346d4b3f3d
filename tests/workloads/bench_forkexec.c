/* Benchmark workload (3): N times fork, exec /bin/true in the child, wait for it.
 * Writes "START_NS END_NS USER_US SYS_US" to TIMEFILE: CLOCK_MONOTONIC around the loop, then the
 * CPU time of the process.
 * Usage: bench_forkexec N TIMEFILE */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "bench_common.h"

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
    return write_times(argv[2], start, end, RUSAGE_SELF);
}
