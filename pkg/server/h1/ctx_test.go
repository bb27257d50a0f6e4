package h1

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

func TestConnContextWatchCancel(t *testing.T) {
	t.Parallel()
	c := newConnContext(context.Background())
	var ran [4]atomic.Int32
	hook := func(i int) func() { return func() { ran[i].Add(1) } }

	stop0 := c.WatchCancel(hook(0))
	if !stop0() {
		t.Error("stop before cancel reported false")
	}
	stop1 := c.WatchCancel(hook(1)) // reuses the freed slot
	stop2 := c.WatchCancel(hook(2))
	stop3 := c.WatchCancel(hook(3)) // beyond the slots: context.AfterFunc
	c.cancel()
	c.cancel()
	if c.Err() == nil {
		t.Fatal("context not cancelled")
	}
	deadline := time.Now().Add(5 * time.Second)
	for ran[3].Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond) // AfterFunc runs f on its own goroutine
	}
	for i, want := range []int32{0, 1, 1, 1} {
		if got := ran[i].Load(); got != want {
			t.Errorf("hook %d ran %d times, want %d", i, got, want)
		}
	}
	for i, stop := range []func() bool{stop1, stop2, stop3} {
		if stop() {
			t.Errorf("stop %d after cancel reported true", i+1)
		}
	}
	var late atomic.Int32
	if c.WatchCancel(func() { late.Add(1) })() || late.Load() != 1 {
		t.Error("a watch of a cancelled context did not run at once")
	}
}

func TestConnContextWatchAllocs(t *testing.T) {
	c := newConnContext(context.Background())
	f := func() {}
	if n := testing.AllocsPerRun(100, func() { c.WatchCancel(f)() }); n != 0 {
		t.Errorf("WatchCancel and stop allocate %v times", n)
	}
}
