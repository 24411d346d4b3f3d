// Allocates the heap in 8 MiB steps and keeps it alive. Under RLIMIT_DATA one of the runtime's
// plain anonymous mmaps fails with ENOMEM and the runtime dies with "fatal error: ... out of
// memory" (exit 2). The argument is the number of MiB to allocate (default 256).
package main

import (
	"fmt"
	"os"
	"strconv"
)

func main() {
	mib := 256
	if len(os.Args) > 1 {
		mib, _ = strconv.Atoi(os.Args[1])
	}
	var kept [][]byte
	for i := 0; i < mib/8; i++ {
		chunk := make([]byte, 8<<20)
		for j := 0; j < len(chunk); j += 4096 {
			chunk[j] = byte(i)
		}
		kept = append(kept, chunk)
	}
	fmt.Println("allocated", len(kept)*8, "MiB")
}
