// A goroutine spinning forever in a named function, no syscalls; the main goroutine waits for it.
// Prints "hung" once the spin starts.
package main

import "fmt"

//go:noinline
func spinForeverInGo(x uint64) uint64 {
	for {
		x = x*6364136223846793005 + 1442695040888963407
		if x == 42 {
			return x
		}
	}
}

func main() {
	done := make(chan uint64)
	go func() { done <- spinForeverInGo(1) }()
	fmt.Println("hung")
	fmt.Println(<-done)
}
