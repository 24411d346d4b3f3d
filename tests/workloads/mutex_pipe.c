/* A lock-order cycle through a pipe: the handler thread takes mutex M and then blocks in read() on a
 * pipe for a reply; the replier thread must take M before it writes that reply. Neither goes on,
 * and only one of the two waits is on a mutex. Prints both thread ids, then "hung" once the replier
 * is about to wait for M. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static int reply[2];

__attribute__((noinline)) static void *handle_request_holding_m(void *arg) {
    char c;
    pthread_mutex_lock(&m);
    printf("handler tid=%d holds mutex %p and reads fd %d\n", gettid(), (void *)&m, reply[0]);
    fflush(stdout);
    if (read(reply[0], &c, 1) != 1) perror("read");
    pthread_mutex_unlock(&m);
    return arg;
}

__attribute__((noinline)) static void *reply_after_taking_m(void *arg) {
    usleep(200000);
    printf("replier tid=%d waits for mutex %p\nhung\n", gettid(), (void *)&m);
    fflush(stdout);
    pthread_mutex_lock(&m);
    if (write(reply[1], "r", 1) != 1) perror("write");
    pthread_mutex_unlock(&m);
    return arg;
}

int main(void) {
    pthread_t handler, replier;
    if (pipe(reply) != 0) return 1;
    pthread_create(&handler, NULL, handle_request_holding_m, NULL);
    pthread_create(&replier, NULL, reply_after_taking_m, NULL);
    pthread_join(handler, NULL);
    pthread_join(replier, NULL);
    return 0;
}
