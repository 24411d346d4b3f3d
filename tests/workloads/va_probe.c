/* Probes for 5-level paging the way some runtimes do: a mapping hinted at 2^47 with
 * MAP_FIXED_NOREPLACE, which a 4-level kernel refuses with ENOMEM. Exits 0 either way. */
#define _GNU_SOURCE
#include <stdio.h>
#include <sys/mman.h>

int main(void) {
    void *p = mmap((void *)(1UL << 47), 4096, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    printf("probe: %s\n", p == MAP_FAILED ? "4-level" : "5-level");
    return 0;
}
