/* Re-entrancy on one mutex: a worker locks a non-recursive (default) mutex, then calls a helper
 * that locks it again and waits on itself forever. Prints the worker's thread id and "hung". */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static int counter;

__attribute__((noinline)) static void bump_counter_locked(void) {
    pthread_mutex_lock(&m);
    counter++;
    pthread_mutex_unlock(&m);
}

__attribute__((noinline)) static void *update_holding_m(void *arg) {
    pthread_mutex_lock(&m);
    printf("worker tid=%d holds mutex %p and locks it again\nhung\n", gettid(), (void *)&m);
    fflush(stdout);
    bump_counter_locked();
    pthread_mutex_unlock(&m);
    return arg;
}

int main(void) {
    pthread_t worker;
    pthread_create(&worker, NULL, update_holding_m, NULL);
    pthread_join(worker, NULL);
    return counter == 1 ? 0 : 1;
}
