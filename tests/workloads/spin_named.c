// spin_named: a thread that burns CPU forever in one named function while main waits in
// pthread_join; prints "pid=<pid> spinner_tid=<tid>" so stack-sampling tests can find both.
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

// volatile keeps the loop alive at -O2; no calls or syscalls inside it, so every cpu-clock tick
// lands in this function's user code.
__attribute__((noinline)) void spin_forever_in_named_function(void) {
    volatile unsigned long counter = 0;
    for (;;)
        counter++;
}

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t started = PTHREAD_COND_INITIALIZER;
static pid_t spinner_tid;

static void *spinner(void *arg) {
    (void)arg;
    pthread_mutex_lock(&lock);
    spinner_tid = (pid_t)syscall(SYS_gettid);
    pthread_cond_signal(&started);
    pthread_mutex_unlock(&lock);
    spin_forever_in_named_function();
    return NULL;
}

int main(void) {
    pthread_t thread;
    if (pthread_create(&thread, NULL, spinner, NULL) != 0) {
        perror("pthread_create");
        return 1;
    }
    pthread_mutex_lock(&lock);
    while (spinner_tid == 0)
        pthread_cond_wait(&started, &lock);
    pid_t tid = spinner_tid;
    pthread_mutex_unlock(&lock);
    printf("pid=%d spinner_tid=%d\n", (int)getpid(), (int)tid);
    fflush(stdout);
    pthread_join(thread, NULL);
    // Never reached; keeps pthread_join from being a tail call so main stays on the stack.
    puts("joined");
    return 0;
}
