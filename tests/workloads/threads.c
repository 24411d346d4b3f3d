/* Creates N threads (default 8), each with the default stack, and joins them.
 * Under `prlimit --data=40M` the stack mprotect fails with ENOMEM and pthread_create returns EAGAIN;
 * under `prlimit --as=60M` the MAP_STACK mmap itself fails. Exit 0 when every thread ran. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *work(void *arg) { return arg; }

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 8;
    pthread_t *tids = calloc((size_t)n, sizeof *tids);
    int created = 0, failed = 0;
    for (int i = 0; i < n; i++) {
        int err = pthread_create(&tids[i], NULL, work, NULL);
        if (err != 0) {
            fprintf(stderr, "pthread_create: %s (%d)\n", strerror(err), err);
            failed++;
            break;
        }
        created++;
    }
    for (int i = 0; i < created; i++) pthread_join(tids[i], NULL);
    printf("created %d threads, %d failed\n", created, failed);
    return failed ? 1 : 0;
}
