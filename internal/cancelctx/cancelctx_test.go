package cancelctx

import (
	"context"
	"errors"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

type key struct{}

func newContext(parent context.Context) *Context {
	c := new(Context)
	c.Init(parent)
	return c
}

func TestWatchCancel(t *testing.T) {
	t.Parallel()
	c := newContext(context.Background())
	var ran [4]atomic.Int32
	hook := func(i int) func() { return func() { ran[i].Add(1) } }

	slot0 := c.WatchCancel(hook(0))
	if !c.Unwatch(slot0) {
		t.Error("Unwatch before cancel reported false")
	}
	slot1 := c.WatchCancel(hook(1)) // reuses the freed slot
	slot2 := c.WatchCancel(hook(2))
	slot3 := c.WatchCancel(hook(3)) // beyond the slots
	c.Cancel()
	c.Cancel()
	if !errors.Is(c.Err(), context.Canceled) || context.Cause(c) != c.Err() {
		t.Fatalf("Err() = %v, Cause() = %v, want context.Canceled", c.Err(), context.Cause(c))
	}
	for i, want := range []int32{0, 1, 1, 1} {
		if got := ran[i].Load(); got != want {
			t.Errorf("hook %d ran %d times, want %d", i, got, want)
		}
	}
	for i, slot := range []int{slot1, slot2, slot3} {
		if c.Unwatch(slot) {
			t.Errorf("Unwatch %d after cancel reported true", i+1)
		}
	}
	var late atomic.Int32
	if c.Unwatch(c.WatchCancel(func() { late.Add(1) })) || late.Load() != 1 {
		t.Error("a watch of a cancelled context did not run at once")
	}
}

func TestStopBeyondTheSlots(t *testing.T) {
	t.Parallel()
	c := newContext(context.Background())
	var ran atomic.Int32
	f := func() { ran.Add(1) }
	slots := []int{c.WatchCancel(f), c.WatchCancel(f), c.WatchCancel(f), c.WatchCancel(f)}
	if !c.Unwatch(slots[3]) || !c.Unwatch(slots[2]) {
		t.Error("Unwatch of a watch beyond the slots reported false")
	}
	if c.Unwatch(slots[3]) {
		t.Error("a second Unwatch reported true")
	}
	c.Cancel()
	if got := ran.Load(); got != 2 {
		t.Errorf("%d functions ran, want the 2 not stopped", got)
	}
}

func TestDone(t *testing.T) {
	t.Parallel()
	c := newContext(context.Background())
	d := c.Done()
	if d != c.Done() {
		t.Error("Done returned two channels")
	}
	select {
	case <-d:
		t.Fatal("Done closed before Cancel")
	default:
	}
	if c.Err() != nil {
		t.Fatalf("Err() = %v before Cancel", c.Err())
	}
	c.Cancel()
	select {
	case <-d:
	default:
		t.Fatal("Done not closed by Cancel")
	}

	// Asked for only after the cancellation.
	late := newContext(context.Background())
	late.Cancel()
	select {
	case <-late.Done():
	default:
		t.Fatal("Done of a cancelled context is not closed")
	}
}

func TestParentValuesAndDeadline(t *testing.T) {
	t.Parallel()
	at := time.Now().Add(time.Hour)
	parent, cancel := context.WithDeadline(context.WithValue(context.Background(), key{}, "v"), at)
	defer cancel()
	c := newContext(parent)
	if got := c.Value(key{}); got != "v" {
		t.Errorf("Value = %v, want the parent's", got)
	}
	if d, ok := c.Deadline(); !ok || !d.Equal(at) {
		t.Errorf("Deadline = %v, %v, want the parent's %v", d, ok, at)
	}
}

// TestInitValues checks that a context made with InitValues has its
// parent's values but only its owner cancels it.
func TestInitValues(t *testing.T) {
	t.Parallel()
	parent, cancel := context.WithCancel(context.WithValue(context.Background(), key{}, "v"))
	var c Context
	c.InitValues(parent)
	if got := c.Value(key{}); got != "v" {
		t.Errorf("Value = %v, want the parent's", got)
	}
	cancel()
	time.Sleep(10 * time.Millisecond)
	if c.Err() != nil {
		t.Fatal("the parent's cancellation reached a context made with InitValues")
	}
	c.Cancel()
	if c.Err() == nil {
		t.Fatal("Cancel did not cancel")
	}
}

func TestParentCancelled(t *testing.T) {
	t.Parallel()
	parent, cancel := context.WithCancel(context.Background())
	c := newContext(parent)
	ran := make(chan struct{}, 2)
	c.WatchCancel(func() { ran <- struct{}{} })
	cancel()
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the parent's cancellation did not reach the context")
	}
	// Cancel closes Done before it runs the watches, on the goroutine
	// context.AfterFunc started for the parent: wait for the watch.
	select {
	case <-ran:
	case <-time.After(5 * time.Second):
		t.Fatal("the watch did not run when the parent was cancelled")
	}
	c.Cancel()
	time.Sleep(10 * time.Millisecond)
	if len(ran) != 0 {
		t.Error("the watch ran twice")
	}
}

// TestDerivedContexts checks that contexts derived with the context
// package are cancelled with c, through AfterFunc rather than one
// goroutine each waiting on Done.
func TestDerivedContexts(t *testing.T) {
	c := newContext(context.Background())
	before := runtime.NumGoroutine()
	const n = 20
	var derived []context.Context
	for range n {
		d, cancel := context.WithCancel(c)
		defer cancel()
		derived = append(derived, d)
	}
	if g := runtime.NumGoroutine(); g > before {
		t.Errorf("deriving %d contexts started %d goroutines", n, g-before)
	}
	var after atomic.Int32
	context.AfterFunc(c, func() { after.Add(1) })
	c.Cancel()
	for i, d := range derived {
		if !errors.Is(d.Err(), context.Canceled) {
			t.Fatalf("derived context %d: Err() = %v after Cancel", i, d.Err())
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for after.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond) // context.AfterFunc runs f on its own goroutine
	}
	if after.Load() != 1 {
		t.Error("context.AfterFunc's function did not run")
	}
}

// TestReinit checks that a cancelled Context initialised again starts
// fresh: not done, no watch left over, a new Done channel.
func TestReinit(t *testing.T) {
	t.Parallel()
	c := newContext(context.Background())
	var ran atomic.Int32
	c.WatchCancel(func() { ran.Add(1) })
	old := c.Done()
	c.Cancel()
	c.Init(context.Background())
	if c.Err() != nil || c.Done() == old {
		t.Fatal("Init did not make a fresh context")
	}
	c.Cancel()
	if ran.Load() != 1 {
		t.Errorf("the first watch ran %d times, want once", ran.Load())
	}
}

func TestAllocs(t *testing.T) {
	c := newContext(context.Background())
	f := func() {}
	if n := testing.AllocsPerRun(100, func() { c.Unwatch(c.WatchCancel(f)) }); n != 0 {
		t.Errorf("WatchCancel and Unwatch allocate %v times", n)
	}
	conn, cancel := context.WithCancel(context.Background())
	defer cancel()
	var fresh *Context
	if n := testing.AllocsPerRun(100, func() {
		fresh = new(Context) // as in a stream, allocated anyway
		fresh.InitValues(conn)
		fresh.Unwatch(fresh.WatchCancel(f))
		fresh.WatchCancel(f)
		_ = fresh.Err()
		fresh.Cancel()
	}); n != 1 {
		t.Errorf("a request's context allocates %v times beyond itself", n-1)
	}
}

// BenchmarkRequest is one request's context as pkg/server/h2 uses it:
// made, watched by the origin client, cancelled at the end.
func BenchmarkRequest(b *testing.B) {
	parent := context.WithValue(context.Background(), key{}, 1)
	f := func() {}
	b.Run("cancelctx", func(b *testing.B) {
		b.ReportAllocs()
		var c Context
		for b.Loop() {
			c.InitValues(parent)
			c.Unwatch(c.WatchCancel(f))
			c.Cancel()
		}
	})
	b.Run("context", func(b *testing.B) {
		conn, cancelConn := context.WithCancel(parent)
		defer cancelConn()
		b.ReportAllocs()
		for b.Loop() {
			ctx, cancel := context.WithCancel(conn)
			stop := context.AfterFunc(ctx, f)
			stop()
			cancel()
		}
	})
}

// TestDeriveWhileCancelling derives contexts while another goroutine
// cancels: the context package calls AfterFunc holding the child's lock,
// so a function for an already cancelled context must not run on the
// caller's goroutine (it did, and deadlocked).
func TestDeriveWhileCancelling(t *testing.T) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 20000 {
			c := newContext(context.Background())
			go c.Cancel()
			d, cancel := context.WithCancel(c)
			<-d.Done()
			cancel()
		}
	}()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("deriving a context while it was cancelled deadlocked")
	}
}
