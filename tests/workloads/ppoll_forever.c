/* Waits forever in ppoll on an eventfd and the read end of a self-pipe (a pipe whose write end
 * this process holds), the way event loops park when nobody will ever wake them. */
#define _GNU_SOURCE
#include <poll.h>
#include <stdio.h>
#include <sys/eventfd.h>
#include <unistd.h>

int main(void) {
    int efd = eventfd(0, EFD_CLOEXEC);
    int pipefd[2];
    if (efd < 0 || pipe(pipefd) != 0) return 2;
    printf("eventfd %d, pipe read %d write %d\n", efd, pipefd[0], pipefd[1]);
    fflush(stdout);
    struct pollfd fds[2] = {{.fd = efd, .events = POLLIN}, {.fd = pipefd[0], .events = POLLIN}};
    for (;;) ppoll(fds, 2, NULL, NULL);
}
