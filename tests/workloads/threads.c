/* Creates N threads (default 8), each with the default stack, and joins them. With a second
 * argument "hold", every thread stays alive until all creations are done (or one failed), so the
 * number of live tasks at a failure is exact.
 * Under `prlimit --data=41943040` the stack mprotect fails with ENOMEM and pthread_create returns
 * EAGAIN; under `prlimit --as=62914560` the MAP_STACK mmap itself fails. Exit 0 when every thread ran. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t released = PTHREAD_COND_INITIALIZER;
static int hold, done;

static void *work(void *arg) {
    pthread_mutex_lock(&lock);
    while (hold && !done) pthread_cond_wait(&released, &lock);
    pthread_mutex_unlock(&lock);
    return arg;
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 8;
    hold = argc > 2 && strcmp(argv[2], "hold") == 0;
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
    pthread_mutex_lock(&lock);
    done = 1;
    pthread_cond_broadcast(&released);
    pthread_mutex_unlock(&lock);
    for (int i = 0; i < created; i++) pthread_join(tids[i], NULL);
    printf("created %d threads, %d failed\n", created, failed);
    return failed ? 1 : 0;
}
