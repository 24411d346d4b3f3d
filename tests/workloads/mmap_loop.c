/* Maps and unmaps one anonymous page in a loop until killed, writing its pid first: a busy
 * process that observer must NOT record when it does not track it. */
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

int main(void) {
    printf("%d\n", getpid());
    fflush(stdout);
    for (;;) {
        void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p != MAP_FAILED) munmap(p, 4096);
        usleep(1000);
    }
}
