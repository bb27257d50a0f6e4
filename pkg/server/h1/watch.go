package h1

import (
	"errors"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// A request's context is cancelled when its client goes away. While the
// handler reads the request body, a client that goes away makes that read
// fail. Once the body has been read to its end (at once for a request
// without one), nothing would read the connection until the response is
// written: a watch does. When the handler is still running watchDelay
// after that, the server's sweeper starts one read of one byte of the
// connection on a goroutine of its own, as net/http's background read,
// until the handler returns. When that read fails (the client closed or
// reset the connection), the connection's context is cancelled, and with
// it the handler's work (the origin exchange). When it reads a byte (the
// client pipelined its next request), that byte is kept for the next
// request and the connection is no longer watched for this one.
//
// The delay keeps the per-request savings: a handler that answers within
// it costs the watch two atomic operations and an append to the
// sweeper's list under a mutex, with no goroutine, timer, wake-up or read
// (BenchmarkKeepAlive, client side included: the same 23 allocations per
// request, and about 3% more CPU, the sweeper's included; a timer per
// request instead doubled the CPU, its resets waking the scheduler, and a
// read per request added two allocations and a wake-up of the network
// poller); a client that goes away during such a request
// costs the origin that much work at most. The sweeper runs every
// watchDelay while requests are in flight, and stops when there are none.
//
// Connections whose next request is already buffered are not watched:
// the client was there a moment ago, and reading ahead would mean
// buffering its pipelined requests without bound.
type watch struct {
	c *conn
	// inHandler is true while the handler runs (the connection's
	// goroutine only).
	inHandler bool
	// state is watchIdle, watchArmed (the sweeper may start the read) or
	// watchReading (it did); gen counts armings, armedAt is the last one's
	// time (UnixNano).
	state   atomic.Int32
	gen     atomic.Uint64
	armedAt atomic.Int64

	// mu orders the read's deadline against stopWatch's interruption.
	mu       sync.Mutex
	aborting atomic.Bool
	done     chan struct{}
	buf      [1]byte
	n        int
	err      error
}

const (
	watchIdle int32 = iota
	watchArmed
	watchReading
)

// watchDelay is how long a handler runs, after its request was read,
// before its connection may be watched, and the sweeper's period.
const watchDelay = 5 * time.Millisecond

// aLongTimeAgo is a deadline in the past, to interrupt a read.
var aLongTimeAgo = time.Unix(1, 0)

// watchEntry is an arming of a connection's watch, in the sweeper's list.
type watchEntry struct {
	c   *conn
	gen uint64
}

// startWatch arms the watch, unless it is armed already, the handler has
// returned, or the next request is buffered.
func (c *conn) startWatch() {
	w := &c.watch
	if w.state.Load() != watchIdle || !w.inHandler || c.br.Buffered() > 0 || c.lim.pending {
		return
	}
	gen := w.gen.Add(1)
	w.armedAt.Store(time.Now().UnixNano())
	w.state.Store(watchArmed)
	c.srv.armWatch(watchEntry{c, gen})
}

// armWatch adds an armed watch to the sweeper's list, starting the
// sweeper if it is not running.
func (s *Server) armWatch(e watchEntry) {
	s.watchMu.Lock()
	s.watchList = append(s.watchList, e)
	start := !s.sweeping
	s.sweeping = true
	s.watchMu.Unlock()
	if start {
		go s.sweepWatches()
	}
}

// sweepWatches starts the read of each watch armed for watchDelay, drops
// those disarmed since, and returns when none is left.
func (s *Server) sweepWatches() {
	t := time.NewTicker(watchDelay)
	defer t.Stop()
	var keep []watchEntry
	for range t.C {
		s.watchMu.Lock()
		list := s.watchList
		s.watchList = s.watchSpare[:0]
		s.watchMu.Unlock()
		now := time.Now().UnixNano()
		keep = keep[:0]
		for _, e := range list {
			w := &e.c.watch
			switch {
			case w.gen.Load() != e.gen || w.state.Load() != watchArmed:
				// Disarmed, or armed again by a later request.
			case now-w.armedAt.Load() < int64(watchDelay):
				keep = append(keep, e)
			case w.state.CompareAndSwap(watchArmed, watchReading):
				go w.read()
			}
		}
		clear(list)
		s.watchMu.Lock()
		s.watchList = append(s.watchList, keep...)
		s.watchSpare = list[:0]
		if len(s.watchList) == 0 {
			s.sweeping = false
			s.watchMu.Unlock()
			return
		}
		s.watchMu.Unlock()
	}
}

// read reads one byte, or fails when the client went away or stopWatch
// interrupts it.
func (w *watch) read() {
	w.mu.Lock()
	if w.aborting.Load() {
		w.mu.Unlock()
		w.n, w.err = 0, os.ErrDeadlineExceeded
		w.done <- struct{}{}
		return
	}
	// The handler may take as long as it needs (the origin's timeouts
	// bound it); the read has no deadline of its own.
	w.c.rwc.SetReadDeadline(time.Time{})
	w.mu.Unlock()
	w.n, w.err = w.c.rwc.Read(w.buf[:])
	if w.n == 0 && w.err != nil && !w.aborting.Load() {
		w.c.ctx.Cancel()
	}
	w.done <- struct{}{}
}

// stopWatch disarms the watch and, if its read has started, interrupts it
// and waits for it. It reports whether the connection can still be used:
// false when the client went away.
func (c *conn) stopWatch() bool {
	w := &c.watch
	if w.state.CompareAndSwap(watchArmed, watchIdle) || w.state.Load() == watchIdle {
		return true
	}
	w.mu.Lock()
	w.aborting.Store(true)
	w.mu.Unlock()
	c.rwc.SetReadDeadline(aLongTimeAgo)
	<-w.done
	w.aborting.Store(false)
	w.state.Store(watchIdle)
	if w.n > 0 {
		c.lim.pending, c.lim.pendingByte = true, w.buf[0]
		return true
	}
	if errors.Is(w.err, os.ErrDeadlineExceeded) {
		// Interrupted: the client is still there.
		return true
	}
	c.ctx.Cancel()
	return false
}

// watchedBody starts the connection's watch when the handler has read the
// request body to its end.
type watchedBody struct {
	rc io.ReadCloser
	c  *conn
}

func (b *watchedBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if err == io.EOF {
		b.c.startWatch()
	}
	return n, err
}

func (b *watchedBody) Close() error { return b.rc.Close() }

var _ io.ReadCloser = (*watchedBody)(nil)
