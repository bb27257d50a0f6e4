//go:build linux

package park

import (
	"math/rand/v2"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// pair returns the two ends of a loopback TCP connection: the server's
// (to park) and the client's.
func pair(t testing.TB) (server, client net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close(); client.Close() })
	return server, client
}

func rawConn(t testing.TB, c net.Conn) syscall.RawConn {
	t.Helper()
	rc, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	return rc
}

func newParker(t testing.TB) *Parker {
	t.Helper()
	p, err := New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// waker records the calls of a wake function.
type waker struct {
	calls    atomic.Int32
	readable atomic.Bool
	ch       chan bool
}

func newWaker() *waker { return &waker{ch: make(chan bool, 2)} }

func (w *waker) wake(readable bool) {
	w.calls.Add(1)
	w.readable.Store(readable)
	w.ch <- readable
}

// wait returns what the wake function was called with, failing after 5 s.
func (w *waker) wait(t testing.TB) bool {
	t.Helper()
	select {
	case r := <-w.ch:
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("the parked connection was not woken")
		return false
	}
}

// quiet fails if the wake function is called within d.
func (w *waker) quiet(t testing.TB, d time.Duration) {
	t.Helper()
	select {
	case r := <-w.ch:
		t.Fatalf("woken (readable %v) with nothing to wake for", r)
	case <-time.After(d):
	}
}

func TestWakeOnData(t *testing.T) {
	p := newParker(t)
	s, c := pair(t)
	w := newWaker()
	if err := p.Park(new(Spot), rawConn(t, s), time.Time{}, w.wake); err != nil {
		t.Fatal(err)
	}
	w.quiet(t, 50*time.Millisecond)
	c.Write([]byte("GET"))
	if !w.wait(t) {
		t.Fatal("woken with readable false by the client's bytes")
	}
	// Parking reads nothing: the bytes are the server's to read.
	buf := make([]byte, 8)
	s.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := s.Read(buf); err != nil || string(buf[:n]) != "GET" {
		t.Fatalf("read %q, %v after the wake, want GET", buf[:n], err)
	}
	if p.Len() != 0 {
		t.Errorf("Len = %d after the wake, want 0", p.Len())
	}
}

func TestWakeOnClientClose(t *testing.T) {
	for _, how := range []string{"close", "reset", "half-close"} {
		t.Run(how, func(t *testing.T) {
			p := newParker(t)
			s, c := pair(t)
			w := newWaker()
			if err := p.Park(new(Spot), rawConn(t, s), time.Time{}, w.wake); err != nil {
				t.Fatal(err)
			}
			switch how {
			case "reset":
				c.(*net.TCPConn).SetLinger(0)
				c.Close()
			case "half-close":
				c.(*net.TCPConn).CloseWrite()
			default:
				c.Close()
			}
			if !w.wait(t) {
				t.Fatal("woken with readable false by the client's close")
			}
		})
	}
}

func TestDeadline(t *testing.T) {
	p := newParker(t)
	s, _ := pair(t)
	w := newWaker()
	start := time.Now()
	if err := p.Park(new(Spot), rawConn(t, s), start.Add(50*time.Millisecond), w.wake); err != nil {
		t.Fatal(err)
	}
	if w.wait(t) {
		t.Fatal("the deadline woke the connection with readable true")
	}
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Errorf("woken after %v, before the deadline", d)
	}

	// A deadline already past wakes at once.
	w = newWaker()
	if err := p.Park(new(Spot), rawConn(t, s), start, w.wake); err != nil {
		t.Fatal(err)
	}
	if w.wait(t) {
		t.Fatal("a past deadline woke the connection with readable true")
	}
}

func TestCancel(t *testing.T) {
	p := newParker(t)
	s, c := pair(t)
	w := newWaker()
	var spot Spot
	if p.Cancel(&spot) {
		t.Error("Cancel of a spot never parked reported true")
	}
	if err := p.Park(&spot, rawConn(t, s), time.Now().Add(time.Hour), w.wake); err != nil {
		t.Fatal(err)
	}
	if err := p.Park(&spot, rawConn(t, s), time.Time{}, func(bool) { t.Error("a refused second Park woke") }); err == nil {
		t.Error("a second Park of a parked spot succeeded")
	}
	if !p.Cancel(&spot) {
		t.Fatal("Cancel of a parked connection reported false")
	}
	if w.wait(t) {
		t.Fatal("Cancel woke the connection with readable true")
	}
	if p.Cancel(&spot) {
		t.Error("a second Cancel reported true")
	}
	// The registration left armed in the set must not wake anybody.
	c.Write([]byte("x"))
	w.quiet(t, 50*time.Millisecond)

	// Woken by data, the spot cannot be cancelled any more.
	s.Read(make([]byte, 1))
	w = newWaker()
	if err := p.Park(&spot, rawConn(t, s), time.Time{}, w.wake); err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("y"))
	w.wait(t)
	if p.Cancel(&spot) {
		t.Error("Cancel after the wake reported true")
	}
	w.quiet(t, 20*time.Millisecond)
	if n := w.calls.Load(); n != 1 {
		t.Errorf("wake called %d times, want once", n)
	}
}

// TestParkAgain parks one connection again and again, as a keep-alive
// connection idle between requests is.
func TestParkAgain(t *testing.T) {
	p := newParker(t)
	s, c := pair(t)
	buf := make([]byte, 8)
	for i := range 5 {
		w := newWaker()
		if err := p.Park(new(Spot), rawConn(t, s), time.Time{}, w.wake); err != nil {
			t.Fatalf("park %d: %v", i, err)
		}
		w.quiet(t, 10*time.Millisecond)
		c.Write([]byte{'a' + byte(i)})
		if !w.wait(t) {
			t.Fatalf("park %d: woken with readable false", i)
		}
		if n, err := s.Read(buf); err != nil || n != 1 || buf[0] != 'a'+byte(i) {
			t.Fatalf("park %d: read %q, %v", i, buf[:n], err)
		}
	}
}

func TestClose(t *testing.T) {
	p, err := New()
	if err != nil {
		t.Fatal(err)
	}
	var ws []*waker
	for range 10 {
		s, _ := pair(t)
		w := newWaker()
		if err := p.Park(new(Spot), rawConn(t, s), time.Time{}, w.wake); err != nil {
			t.Fatal(err)
		}
		ws = append(ws, w)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	for i, w := range ws {
		if w.wait(t) {
			t.Errorf("connection %d: Close woke it with readable true", i)
		}
	}
	s, _ := pair(t)
	if err := p.Park(new(Spot), rawConn(t, s), time.Time{}, func(bool) { t.Error("woken after a refused Park") }); err == nil {
		t.Error("Park after Close succeeded")
	}
	if err := p.Close(); err != nil {
		t.Errorf("a second Close: %v", err)
	}
}

// TestClosedConn checks that Park of a closed connection fails and never
// wakes: the caller waits itself (and finds the connection closed).
func TestClosedConn(t *testing.T) {
	p := newParker(t)
	s, _ := pair(t)
	rc := rawConn(t, s)
	s.Close()
	if err := p.Park(new(Spot), rc, time.Time{}, func(bool) { t.Error("woken after a refused Park") }); err == nil {
		t.Fatal("Park of a closed connection succeeded")
	}
	if p.Len() != 0 {
		t.Errorf("Len = %d after a refused Park", p.Len())
	}
	time.Sleep(20 * time.Millisecond)
}

// TestDescriptorReused parks a connection, closes it and cancels its
// spot, then parks the connection that gets its descriptor number: the
// kernel dropped the first from the set, and the second's bytes wake the
// second's function.
func TestDescriptorReused(t *testing.T) {
	p := newParker(t)
	s1, _ := pair(t)
	w1 := newWaker()
	var spot Spot
	if err := p.Park(&spot, rawConn(t, s1), time.Time{}, w1.wake); err != nil {
		t.Fatal(err)
	}
	fd1 := fdOf(t, s1)
	s1.Close()
	p.Cancel(&spot)
	w1.wait(t)
	s2, c2 := pair(t)
	if fd2 := fdOf(t, s2); fd2 != fd1 {
		t.Logf("descriptor %d, not %d: the kernel did not reuse it", fd2, fd1)
	}
	w2 := newWaker()
	if err := p.Park(new(Spot), rawConn(t, s2), time.Time{}, w2.wake); err != nil {
		t.Fatal(err)
	}
	c2.Write([]byte("x"))
	if !w2.wait(t) {
		t.Fatal("woken with readable false")
	}
	w1.quiet(t, 20*time.Millisecond)
}

func fdOf(t testing.TB, c net.Conn) int {
	var fd int
	rawConn(t, c).Control(func(f uintptr) { fd = int(f) })
	return fd
}

// TestNoGoroutinePerConnection parks 200 connections: the goroutines do
// not grow with them.
func TestNoGoroutinePerConnection(t *testing.T) {
	p := newParker(t)
	const n = 200
	var clients []net.Conn
	var woken sync.WaitGroup
	before := runtime.NumGoroutine()
	for range n {
		s, c := pair(t)
		clients = append(clients, c)
		woken.Add(1)
		if err := p.Park(new(Spot), rawConn(t, s), time.Time{}, func(bool) { woken.Done() }); err != nil {
			t.Fatal(err)
		}
	}
	if g := runtime.NumGoroutine() - before; g > 10 {
		t.Errorf("%d connections parked, %d goroutines more", n, g)
	}
	if p.Len() != n {
		t.Errorf("Len = %d, want %d", p.Len(), n)
	}
	for _, c := range clients {
		c.Write([]byte("x"))
	}
	woken.Wait()
}

// TestWokenOnce races the three wakes (the client's byte, the deadline,
// Cancel) on many connections: each connection is woken exactly once.
func TestWokenOnce(t *testing.T) {
	p := newParker(t)
	const n = 300
	type parked struct {
		w    *waker
		spot *Spot
		c    net.Conn
	}
	var all []parked
	start := time.Now()
	for range n {
		s, c := pair(t)
		w := newWaker()
		deadline := start.Add(time.Duration(rand.IntN(20)) * time.Millisecond)
		spot := new(Spot)
		if err := p.Park(spot, rawConn(t, s), deadline, w.wake); err != nil {
			t.Fatal(err)
		}
		all = append(all, parked{w, spot, c})
	}
	var wg sync.WaitGroup
	for _, x := range all {
		wg.Go(func() {
			time.Sleep(time.Duration(rand.IntN(20)) * time.Millisecond)
			if rand.IntN(2) == 0 {
				x.c.Write([]byte("x"))
			} else {
				p.Cancel(x.spot)
			}
		})
	}
	wg.Wait()
	for _, x := range all {
		x.w.wait(t)
	}
	time.Sleep(50 * time.Millisecond)
	for i, x := range all {
		if k := x.w.calls.Load(); k != 1 {
			t.Errorf("connection %d woken %d times", i, k)
		}
	}
	if p.Len() != 0 {
		t.Errorf("Len = %d after every wake", p.Len())
	}
}

// BenchmarkParkWake is one idle period of a parked connection: Park, the
// client's byte, the wake on a new goroutine, and the server's read of
// the byte. BenchmarkBlockedRead is the same round on a goroutine that
// waits in its read, as an unparked connection does.
func BenchmarkParkWake(b *testing.B) {
	p := newParker(b)
	s, c := pair(b)
	rc := rawConn(b, s)
	woken := make(chan bool, 1)
	wake := func(readable bool) { woken <- readable }
	buf := make([]byte, 1)
	var spot Spot
	b.ReportAllocs()
	for b.Loop() {
		if err := p.Park(&spot, rc, time.Time{}, wake); err != nil {
			b.Fatal(err)
		}
		c.Write(buf)
		if !<-woken {
			b.Fatal("woken with readable false")
		}
		if _, err := s.Read(buf); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBlockedRead(b *testing.B) {
	s, c := pair(b)
	ready := make(chan struct{})
	read := make(chan error)
	go func() {
		buf := make([]byte, 1)
		for range ready {
			_, err := s.Read(buf)
			read <- err
		}
	}()
	defer close(ready)
	buf := make([]byte, 1)
	b.ReportAllocs()
	for b.Loop() {
		ready <- struct{}{}
		c.Write(buf)
		if err := <-read; err != nil {
			b.Fatal(err)
		}
	}
}
