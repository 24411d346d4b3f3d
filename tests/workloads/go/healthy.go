// Healthy Go: a few goroutines sum a little each while a time.Ticker ticks; everything ends and
// the program exits 0.
package main

import (
	"fmt"
	"sync"
	"time"
)

func main() {
	ticker := time.NewTicker(10 * time.Millisecond)
	defer ticker.Stop()
	ticks := make(chan int)
	go func() {
		n := 0
		for range ticker.C {
			n++
			if n == 5 {
				ticks <- n
				return
			}
		}
	}()
	var wg sync.WaitGroup
	sums := make([]int, 4)
	for i := range sums {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for j := 0; j < 1000000; j++ {
				sums[i] += j % (i + 2)
			}
		}(i)
	}
	wg.Wait()
	fmt.Println("sums", sums, "ticks", <-ticks)
}
