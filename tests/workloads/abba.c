/* The ABBA deadlock: thread 1 locks A then B, thread 2 locks B then A, each pausing in between so
 * both get their first lock; main joins them forever. */
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

static pthread_mutex_t a = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t b = PTHREAD_MUTEX_INITIALIZER;

__attribute__((noinline)) static void *lock_a_then_b(void *arg) {
    pthread_mutex_lock(&a);
    usleep(200000);
    pthread_mutex_lock(&b);
    return arg;
}

__attribute__((noinline)) static void *lock_b_then_a(void *arg) {
    pthread_mutex_lock(&b);
    usleep(200000);
    pthread_mutex_lock(&a);
    return arg;
}

int main(void) {
    pthread_t t1, t2;
    printf("mutex a %p, mutex b %p\n", (void *)&a, (void *)&b);
    fflush(stdout);
    pthread_create(&t1, NULL, lock_a_then_b, NULL);
    pthread_create(&t2, NULL, lock_b_then_a, NULL);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    return 0;
}
