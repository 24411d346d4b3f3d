/* A thread busy with syscalls, on a whole CPU: `getppid` (a call observer does not record) or
 * `kill` (`kill(getpid(), 0)`: one record each, no signal) as fast as it can, for SECONDS seconds.
 * It is never stuck: a watchdog that judged it from what its reader had drained (nothing for an
 * unrecorded call, an old record when the reader lags) would call it spinning "making no syscalls".
 * Usage: syscall_storm getppid|kill SECONDS */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc != 3 || (strcmp(argv[1], "getppid") && strcmp(argv[1], "kill"))) {
        fprintf(stderr, "usage: syscall_storm getppid|kill SECONDS\n");
        return 2;
    }
    int use_kill = strcmp(argv[1], "kill") == 0;
    double end = now_s() + atof(argv[2]);
    pid_t self = getpid();
    long calls = 0;
    while (now_s() < end) {
        for (int i = 0; i < 1000; i++) {
            if (use_kill)
                kill(self, 0);
            else
                syscall(SYS_getppid);
        }
        calls += 1000;
    }
    printf("%ld calls\n", calls);
    return 0;
}
