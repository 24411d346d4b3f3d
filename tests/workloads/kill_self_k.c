/* Makes exactly K kill(getpid(), 0) calls (default 100): a syscall the C runtime never makes by
 * itself, so the capture must hold exactly K records of it. */
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv) {
    int k = argc > 1 ? atoi(argv[1]) : 100;
    pid_t me = getpid();
    for (int i = 0; i < k; i++) kill(me, 0);
    return 0;
}
