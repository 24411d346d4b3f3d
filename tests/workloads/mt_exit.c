// Three threads; the main thread calls exit(3) while the others sleep: the kernel ends them with
// SIGKILL inside exit_group, which is no kill. Healthy programs exit this way all the time.
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

static void *sleeper(void *arg) {
    (void)arg;
    for (;;) pause();
    return NULL;
}

int main(int argc, char **argv) {
    int code = argc > 1 ? atoi(argv[1]) : 3;
    pthread_t t[2];
    for (int i = 0; i < 2; i++) pthread_create(&t[i], NULL, sleeper, NULL);
    usleep(50000);
    exit(code);
}
