/* Re-entrancy through a condition variable: the waiter holds mutex M while it waits on condvar C
 * (whose own mutex N it releases); the only signaller must take M first. Prints both thread ids,
 * then "hung" once the signaller is about to wait for M. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t n = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t c = PTHREAD_COND_INITIALIZER;
static int ready;

__attribute__((noinline)) static void *wait_for_signal_holding_m(void *arg) {
    pthread_mutex_lock(&m);
    pthread_mutex_lock(&n);
    printf("waiter tid=%d holds mutex %p and waits on condvar %p\n", gettid(), (void *)&m, (void *)&c);
    fflush(stdout);
    while (!ready) pthread_cond_wait(&c, &n);
    pthread_mutex_unlock(&n);
    pthread_mutex_unlock(&m);
    return arg;
}

__attribute__((noinline)) static void *signal_after_taking_m(void *arg) {
    usleep(200000);
    printf("signaller tid=%d waits for mutex %p\nhung\n", gettid(), (void *)&m);
    fflush(stdout);
    pthread_mutex_lock(&m);
    pthread_mutex_lock(&n);
    ready = 1;
    pthread_cond_signal(&c);
    pthread_mutex_unlock(&n);
    pthread_mutex_unlock(&m);
    return arg;
}

int main(void) {
    pthread_t waiter, signaller;
    pthread_create(&waiter, NULL, wait_for_signal_holding_m, NULL);
    pthread_create(&signaller, NULL, signal_after_taking_m, NULL);
    pthread_join(waiter, NULL);
    pthread_join(signaller, NULL);
    return 0;
}
