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
// written: a watch does. When the handler has been running for watchDelay
// after that, the watch reads one byte of the connection on the timer's
// goroutine, as net/http's background read does, until the handler
// returns. When that read fails (the client closed or reset the
// connection), the connection's context is cancelled, and with it the
// handler's work (the origin exchange). When it reads a byte (the client
// pipelined its next request), that byte is kept for the next request and
// the connection is no longer watched for this one.
//
// The delay keeps the per-request savings: a handler that answers within
// it costs the watch only a timer's reset and stop, no goroutine, no
// wake-up and no read (BenchmarkKeepAlive); a client that goes away during
// such a request costs the origin that much work at most.
//
// Connections whose next request is already buffered are not watched:
// the client was there a moment ago, and reading ahead would mean
// buffering its pipelined requests without bound.
type watch struct {
	c *conn
	// inHandler is true while the handler runs, armed while the timer is
	// set for the current request (both on the connection's goroutine).
	inHandler, armed bool
	timer            *time.Timer

	mu sync.Mutex
	// stopped: the request is over, the read must not start; reading: it
	// has started.
	stopped, reading bool
	// aborting is set when stopWatch interrupts the read: its timeout is
	// not the client's doing.
	aborting atomic.Bool
	done     chan struct{}
	buf      [1]byte
	n        int
	err      error
}

// watchDelay is how long a handler runs, after the request was read,
// before its connection is watched.
const watchDelay = 5 * time.Millisecond

// aLongTimeAgo is a deadline in the past, to interrupt a read.
var aLongTimeAgo = time.Unix(1, 0)

// startWatch arms the watch, unless it is armed already, the handler has
// returned, or the next request is buffered.
func (c *conn) startWatch() {
	w := &c.watch
	if w.armed || !w.inHandler || c.br.Buffered() > 0 || c.lim.pending {
		return
	}
	w.armed = true
	w.mu.Lock()
	w.stopped = false
	w.mu.Unlock()
	if w.timer == nil {
		w.done = make(chan struct{}, 1)
		w.timer = time.AfterFunc(watchDelay, w.read)
	} else {
		w.timer.Reset(watchDelay)
	}
}

// read runs on the timer's goroutine: it reads one byte, or fails when
// the client went away or stopWatch interrupts it.
func (w *watch) read() {
	w.mu.Lock()
	if w.stopped {
		w.mu.Unlock()
		return
	}
	w.reading = true
	// The handler may take as long as it needs (the origin's timeouts
	// bound it); the read has no deadline of its own.
	w.c.rwc.SetReadDeadline(time.Time{})
	w.mu.Unlock()
	w.n, w.err = w.c.rwc.Read(w.buf[:])
	if w.n == 0 && w.err != nil && !w.aborting.Load() {
		w.c.cancel()
	}
	w.done <- struct{}{}
}

// stopWatch disarms the watch and, if its read has started, interrupts it
// and waits for it. It reports whether the connection can still be used:
// false when the client went away.
func (c *conn) stopWatch() bool {
	w := &c.watch
	if !w.armed {
		return true
	}
	w.armed = false
	w.timer.Stop()
	w.mu.Lock()
	w.stopped = true
	reading := w.reading
	w.reading = false
	w.mu.Unlock()
	if !reading {
		return true
	}
	w.aborting.Store(true)
	c.rwc.SetReadDeadline(aLongTimeAgo)
	<-w.done
	w.aborting.Store(false)
	if w.n > 0 {
		c.lim.pending, c.lim.pendingByte = true, w.buf[0]
		return true
	}
	if errors.Is(w.err, os.ErrDeadlineExceeded) {
		// Interrupted: the client is still there.
		return true
	}
	c.cancel()
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
