/* Maps one anonymous page read-only, prints its address, then writes to 8 bytes into it:
 * SIGSEGV with SEGV_ACCERR at a known address inside a known mapping. */
#include <stdio.h>
#include <sys/mman.h>

int main(void) {
    volatile char *page = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (page == MAP_FAILED) return 2;
    printf("%p\n", (void *)(page + 8));
    fflush(stdout);
    page[8] = 1;
    return 0;
}
