// A sync.Mutex deadlock (ABBA between two goroutines) while a time.Ticker goroutine keeps ticking
// every 10 ms: Go's own "all goroutines are asleep" detector never fires, and the OS threads keep
// waking up. Prints "hung" when both goroutines hold their first mutex.
package main

import (
	"fmt"
	"os"
	"sync"
	"time"
)

var a, b sync.Mutex
var ticks int

func lockAThenB(held *sync.WaitGroup, done chan<- bool) {
	a.Lock()
	held.Done()
	held.Wait()
	b.Lock()
	done <- true
}

func lockBThenA(held *sync.WaitGroup, done chan<- bool) {
	b.Lock()
	held.Done()
	held.Wait()
	a.Lock()
	done <- true
}

func main() {
	ticker := time.NewTicker(10 * time.Millisecond)
	go func() {
		for range ticker.C {
			ticks++
		}
	}()
	var held sync.WaitGroup
	held.Add(2)
	done := make(chan bool)
	go lockAThenB(&held, done)
	go lockBThenA(&held, done)
	held.Wait()
	fmt.Println("hung")
	os.Stdout.Sync()
	<-done
	<-done
	fmt.Println("unreachable", ticks)
}
