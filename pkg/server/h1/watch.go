package h1

import (
	"errors"
	"io"
	"os"
	"sync/atomic"
	"time"
)

// A request's context is cancelled when its client goes away. While the
// handler reads the request body, a client that goes away makes that read
// fail. Once the body has been read to its end (at once for a request
// without one), nothing would read the connection until the response is
// written: a watch does. It is one read of one byte on its own goroutine,
// started only then and stopped as soon as the handler returns, as
// net/http's background read is. When the read fails (the client closed
// or reset the connection), the connection's context is cancelled, and
// with it the handler's work (the origin exchange). When it reads a byte
// (the client pipelined its next request), that byte is kept for the next
// request and the connection is no longer watched for this one.
//
// Connections whose next request is already buffered are not watched:
// the client was there a moment ago, and reading ahead would mean
// buffering its pipelined requests without bound.
type watch struct {
	c *conn
	// inHandler is true while the handler runs; running while a read is
	// under way.
	inHandler, running bool
	// aborting is set when stopWatch interrupts the read: its timeout is
	// not the client's doing.
	aborting atomic.Bool
	done     chan struct{}
	buf      [1]byte
	n        int
	err      error
}

// aLongTimeAgo is a deadline in the past, to interrupt a read.
var aLongTimeAgo = time.Unix(1, 0)

// startWatch starts watching the connection for the client going away,
// unless it is watched already, the handler has returned, or the next
// request is buffered.
func (c *conn) startWatch() {
	w := &c.watch
	if w.running || !w.inHandler || c.br.Buffered() > 0 || c.lim.pending {
		return
	}
	if w.done == nil {
		w.done = make(chan struct{}, 1)
	}
	w.running = true
	// The handler may take as long as it needs (the origin's timeouts
	// bound it); the read has no deadline of its own.
	c.rwc.SetReadDeadline(time.Time{})
	go w.read()
}

func (w *watch) read() {
	w.n, w.err = w.c.rwc.Read(w.buf[:])
	if w.n == 0 && w.err != nil && !w.aborting.Load() {
		w.c.cancel()
	}
	w.done <- struct{}{}
}

// stopWatch interrupts the watch's read, if there is one, and waits for
// it. It reports whether the connection can still be used: false when the
// client went away.
func (c *conn) stopWatch() bool {
	w := &c.watch
	if !w.running {
		return true
	}
	w.running = false
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
