/* Forks N children that sleep for a few seconds, counting the forks that fail (EAGAIN under a
 * pids limit), then waits for the ones it got: a small fork storm. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 50, failed = 0;
    for (int i = 0; i < n; i++) {
        pid_t pid = fork();
        if (pid == 0) {
            sleep(3);
            _exit(0);
        }
        if (pid < 0) failed++;
    }
    while (wait(NULL) > 0) {}
    printf("%d forks failed\n", failed);
    return 0;
}
