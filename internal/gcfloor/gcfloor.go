// Package gcfloor keeps the garbage collector's heap goal at least a floor
// above the live heap.
//
// With Go's default (GOGC=100) the collector runs each time the heap
// doubles. An edge serving one or a few domains lives in a few megabytes,
// so under load it collects more than once a second (14 times in 11 s of
// the benchmark's keep-alive load with 2 MB live). A floor of 16 MiB makes
// the goal max(2×live, live+floor): five times fewer collections for that
// edge (3 in the same 11 s), and no change at all for one whose live heap
// is larger than the floor (10,000 domains, thousands of connections),
// where GOGC=100 already gives that much room. The price is memory: up to
// the floor more heap between two collections, and, while thousands of
// connections arrive at once, more of their long-lived objects scattered
// among their handshakes' garbage. A 32 MiB floor, the default before,
// left 2,000 idle connections holding 5 KB more each than 16 MiB does
// (docs/PERFORMANCE.md, Idle connections).
//
// Go offers no such setting, so a goroutine reads the live heap
// (runtime/metrics "/gc/heap/live:bytes", as of the last collection) once
// a second and sets the GC percentage to floor/live (never below 100; a
// live heap under the runtime's 4 MB minimum goal counts as 4 MB). An
// operator's own GOGC or GOMEMLIMIT wins: with either set, Start does
// nothing.
package gcfloor

import (
	"os"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"time"
)

// DefaultFloor is the floor `edgectl serve` keeps by default.
const DefaultFloor = 16 << 20

// maxPercent bounds the percentage (a floor of 400 MB and more).
const maxPercent = 10_000

// period is how often the live heap is read.
const period = time.Second

var (
	mu      sync.Mutex
	running int // Starts not yet stopped
	quit    chan struct{}
	done    chan struct{}
	orig    int
)

// Start keeps the heap goal at least floor bytes above the live heap
// until stop is called, which restores the percentage there was. It does
// nothing (and stop does nothing) when floor is 0 or the environment sets
// GOGC or GOMEMLIMIT. The setting is the process's: while several Starts
// overlap, the first one's floor applies until the last stop.
func Start(floor uint64) (stop func()) {
	if floor == 0 || os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		return func() {}
	}
	mu.Lock()
	defer mu.Unlock()
	running++
	if running == 1 {
		quit, done = make(chan struct{}), make(chan struct{})
		orig = debug.SetGCPercent(percentFor(floor, liveHeap()))
		go tune(floor, quit, done)
	}
	var once sync.Once
	return func() { once.Do(release) }
}

func release() {
	mu.Lock()
	defer mu.Unlock()
	running--
	if running == 0 {
		close(quit)
		<-done
		debug.SetGCPercent(orig)
	}
}

// tune re-reads the live heap every period and adjusts the percentage
// when it is off by more than a tenth.
func tune(floor uint64, quit <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(period)
	defer t.Stop()
	current := percentFor(floor, liveHeap())
	for {
		select {
		case <-quit:
			return
		case <-t.C:
		}
		want := percentFor(floor, liveHeap())
		if diff := want - current; diff > current/10 || -diff > current/10 {
			debug.SetGCPercent(want)
			current = want
		}
	}
}

// heapMinimum is the Go runtime's smallest heap goal at GOGC=100 (its
// defaultHeapMinimum). The runtime scales it with the percentage: at
// GOGC=p no goal is below heapMinimum×p/100, and before the first
// collection that is the goal.
const heapMinimum = 4 << 20

// percentFor is the GC percentage whose goal is max(2×live, live+floor).
// A live heap under heapMinimum (none before the first collection) counts
// as heapMinimum: the runtime's own minimum, scaled by the percentage,
// then makes the goal about the floor. (Counting it as it is would scale
// that minimum far beyond: at 10,000%, 400 MB before any collection.)
func percentFor(floor, live uint64) int {
	live = max(live, heapMinimum)
	p := floor * 100 / live
	switch {
	case p < 100:
		return 100
	case p > maxPercent:
		return maxPercent
	}
	return int(p)
}

// liveHeap is the heap marked live by the last collection (0 before the
// first).
func liveHeap() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}
