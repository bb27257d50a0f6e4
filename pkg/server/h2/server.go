package h2

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"

	"github.com/edgectl/edgectl/internal/park"
)

// Server serves HTTP/2 on connections handed to ServeConn. The zero value
// serves with no timeouts, DefaultMaxConcurrentStreams and
// DefaultMaxHeaderBytes; set Handler before use.
type Server struct {
	// Handler answers every request.
	Handler http.Handler
	// ConnContext, if not nil, returns the context of a connection's
	// requests, derived from context.Background. Each stream's context is
	// derived from it and cancelled when the stream is reset, when the
	// connection closes, and by Close.
	ConnContext func(ctx context.Context, c net.Conn) context.Context
	// ConnIdle, if not nil, is called with a connection's context when
	// the connection has had no stream for idleSettle (250 ms) and waits
	// on its socket alone (see conn.waitIdle): the handler may let go of
	// what it keeps for the connection's next requests. It runs on the
	// connection's reading goroutine.
	ConnIdle func(ctx context.Context)
	// Parker, if not nil, holds the connections served by ServeConnThen
	// while they wait idle: a connection with no stream for idleSettle
	// (after ConnIdle) parks there and its reading goroutine returns; a
	// new one reads its next frame (internal/park).
	Parker *park.Parker
	// ReadHeaderTimeout bounds the wait for a connection's first request:
	// a connection whose first header block is not complete
	// ReadHeaderTimeout after ServeConn is closed. Zero means no bound.
	ReadHeaderTimeout time.Duration
	// IdleTimeout closes, with GOAWAY NO_ERROR, a connection that has had
	// no open stream for that long. Zero means no bound.
	IdleTimeout time.Duration
	// BodyReadTimeout bounds each wait of a handler's read of its request
	// body (the wait between two successive reads, as nginx's
	// client_body_timeout); when it expires the stream is reset. Zero
	// means no bound.
	BodyReadTimeout time.Duration
	// WriteTimeout bounds each wait of a handler's write for flow-control
	// window (a client whose window stays closed stalls exactly these
	// writes: the stream is reset), and each write to the connection (a
	// connection on which nothing can be written for WriteTimeout is
	// closed). Zero means no bound.
	WriteTimeout time.Duration
	// MaxConcurrentStreams is the streams a client may have open on a
	// connection (advertised in SETTINGS), and the handlers that may run
	// at once for one connection. Zero means DefaultMaxConcurrentStreams.
	MaxConcurrentStreams int
	// MaxHeaderBytes bounds a request's header list as net/http counts it;
	// the limit advertised (SETTINGS_MAX_HEADER_LIST_SIZE) adds HTTP/2's
	// 32 bytes per field for 10 fields, as x/net/http2 does. Zero means
	// DefaultMaxHeaderBytes.
	MaxHeaderBytes int
	// ErrorLog, if not nil, receives handler panics other than
	// http.ErrAbortHandler, and connection errors worth an operator's
	// attention.
	ErrorLog func(msg string, args ...any)
	// CountError, if not nil, is called with the kind of each protocol
	// error and defence, spelled as x/net/http2's Server.CountError spells
	// it: scope ("conn" or "stream"), code and cause, such as
	// "conn_ENHANCE_YOUR_CALM_too_many_early_resets".
	CountError func(errType string)
	// CountTimeout, if not nil, is called with "header", "idle", "body" or
	// "write" each time that timeout closes a connection or resets a
	// stream.
	CountTimeout func(timeout string)

	shutdown atomic.Bool
	// timerRuns counts the runs of the connections' timers (tests).
	timerRuns atomic.Int64
	// readFramers counts the read framers the connections hold (tests).
	readFramers atomic.Int64
	mu          sync.Mutex
	conns       map[*conn]struct{}

	workers workerPool
}

// Defaults of Server.
const (
	// DefaultMaxConcurrentStreams is the least RFC 9113 recommends.
	DefaultMaxConcurrentStreams = 100
	// DefaultMaxHeaderBytes is net/http's.
	DefaultMaxHeaderBytes = 1 << 20
)

// ErrServerClosed is returned by ServeConn after Shutdown or Close.
var ErrServerClosed = errors.New("h2: server closed")

func (s *Server) maxStreams() int {
	if s.MaxConcurrentStreams > 0 {
		return s.MaxConcurrentStreams
	}
	return DefaultMaxConcurrentStreams
}

// maxHeaderListSize is the header list limit in HTTP/2's unit: net/http's
// MaxHeaderBytes plus 32 bytes for each of 10 fields, as x/net/http2.
func (s *Server) maxHeaderListSize() uint32 {
	n := s.MaxHeaderBytes
	if n <= 0 {
		n = DefaultMaxHeaderBytes
	}
	const perField, fields = 32, 10
	v := int64(n) + perField*fields
	if v > 1<<31-1 {
		v = 1<<31 - 1
	}
	return uint32(v)
}

// ServeConn serves HTTP/2 on c, whose TLS handshake (if c is a *tls.Conn)
// is complete and negotiated "h2", until the client closes it, a timeout
// or a protocol error ends it, or the server shuts down; then it closes c.
// Requests carry c's ConnectionState. It returns when the connection is
// closed; handlers still running get cancelled contexts and failing
// writes, and finish on their own.
//
// It returns nil when the client ended the connection or a timeout did,
// ErrServerClosed after Shutdown or Close, and otherwise an error saying
// why the connection was closed (a protocol error as an
// http2.ConnectionError).
func (s *Server) ServeConn(c net.Conn) error {
	ch := make(chan error, 1)
	s.serveConn(c, false, func(err error) { ch <- err })
	return <-ch
}

// ServeConnThen serves c as ServeConn does, and calls done with what
// ServeConn would return once c is closed. With Parker set it may return
// before: a connection with no stream for idleSettle parks, without a
// goroutine, and done is called on whichever goroutine ends the
// connection.
func (s *Server) ServeConnThen(c net.Conn, done func(error)) {
	s.serveConn(c, s.Parker != nil, done)
}

func (s *Server) serveConn(c net.Conn, mayPark bool, done func(error)) {
	if s.shutdown.Load() {
		c.Close()
		done(ErrServerClosed)
		return
	}
	cn := newConn(s, c)
	if !s.track(cn) {
		cn.nc.Close()
		done(ErrServerClosed)
		return
	}
	cn.mayPark, cn.done = mayPark, done
	cn.begin()
	cn.run(false, false)
}

func (s *Server) track(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shutdown.Load() {
		return false
	}
	if s.conns == nil {
		s.conns = make(map[*conn]struct{})
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *Server) untrack(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

func (s *Server) snapshot() []*conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	all := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		all = append(all, c)
	}
	return all
}

// Shutdown stops serving gracefully: every connection is sent GOAWAY
// NO_ERROR naming the last stream it will serve, streams opened later are
// ignored, connections with no open stream close at once and the others
// when their last stream ends. It returns when every connection is
// closed, or ctx's error when ctx ends first; Close then cuts off the
// rest.
func (s *Server) Shutdown(ctx context.Context) error {
	s.shutdown.Store(true)
	for _, c := range s.snapshot() {
		// Each on its own goroutine: a connection whose writer is stuck
		// on a client that reads nothing holds its write lock until
		// WriteTimeout (or Close); it must not delay the other
		// connections' GOAWAY nor ctx's end.
		go c.goAwayGraceful()
	}
	wait := time.Millisecond
	for {
		if s.Open() == 0 {
			return nil
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		if wait < 100*time.Millisecond {
			wait *= 2
		}
	}
}

// Close closes every connection at once; the contexts of the streams in
// flight are cancelled.
func (s *Server) Close() {
	s.shutdown.Store(true)
	for _, c := range s.snapshot() {
		c.ctx.Cancel()
		c.nc.Close()
		c.unpark()
	}
}

// Open reports how many connections are being served.
func (s *Server) Open() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

func (s *Server) logf(msg string, args ...any) {
	if s.ErrorLog != nil {
		s.ErrorLog(msg, args...)
	}
}

// countError counts err (a *connError or *streamError) under its cause.
func (s *Server) countError(err error) {
	if s.CountError == nil {
		return
	}
	switch e := err.(type) {
	case *connError:
		s.CountError(fmt.Sprintf("conn_%s_%s", e.code, e.cause))
	case *streamError:
		s.CountError(fmt.Sprintf("stream_%s_%s", e.code, e.cause))
	}
}

func (s *Server) countTimeout(kind string) {
	if s.CountTimeout != nil {
		s.CountTimeout(kind)
	}
}

// connError ends the connection with GOAWAY code; cause names it for
// CountError.
type connError struct {
	code  http2.ErrCode
	cause string
}

func (e *connError) Error() string {
	return fmt.Sprintf("h2: connection error %s (%s)", e.code, e.cause)
}

// Unwrap gives the error as x/net/http2 names it.
func (e *connError) Unwrap() error { return http2.ConnectionError(e.code) }

// streamError resets one stream with code.
type streamError struct {
	id    uint32
	code  http2.ErrCode
	cause string
	// body is what the stream's handler reads from its body after the
	// reset; nil means errStreamClosed.
	body error
}

func (e *streamError) Error() string {
	return fmt.Sprintf("h2: stream %d error %s (%s)", e.id, e.code, e.cause)
}

func connErr(code http2.ErrCode, cause string) error { return &connError{code, cause} }

func streamErr(id uint32, code http2.ErrCode, cause string) error {
	return &streamError{id: id, code: code, cause: cause}
}

// workerPool runs handlers on goroutines that outlive them: a worker that
// finished a stream waits for the next one, keeping its grown stack, so
// that a stream does not start on a new goroutine's 2 KB stack and copy it
// as the handler grows it. The most recently idle worker is taken first;
// one idle for workerIdle exits.
type workerPool struct {
	mu       sync.Mutex
	idle     []*worker // oldest first
	sweeping bool
}

// workerIdle is how long an idle worker waits for a stream before it
// exits.
const workerIdle = 10 * time.Second

type worker struct {
	ch    chan *stream
	since time.Time
}

// run serves st on an idle worker, or on a new one.
func (p *workerPool) run(st *stream) {
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		w := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		w.ch <- st
		return
	}
	p.mu.Unlock()
	w := &worker{ch: make(chan *stream, 1)}
	go w.loop(p, st)
}

func (w *worker) loop(p *workerPool, st *stream) {
	for st != nil {
		st.serve()
		p.mu.Lock()
		w.since = time.Now()
		p.idle = append(p.idle, w)
		if !p.sweeping {
			p.sweeping = true
			go p.sweep()
		}
		p.mu.Unlock()
		st = <-w.ch
	}
}

// sweep ends the workers idle for longer than workerIdle; it runs while
// there are idle workers.
func (p *workerPool) sweep() {
	for {
		time.Sleep(workerIdle / 4)
		p.mu.Lock()
		cut := time.Now().Add(-workerIdle)
		n := 0
		for n < len(p.idle) && p.idle[n].since.Before(cut) {
			p.idle[n].ch <- nil
			n++
		}
		if n > 0 {
			copy(p.idle, p.idle[n:])
			for i := len(p.idle) - n; i < len(p.idle); i++ {
				p.idle[i] = nil
			}
			p.idle = p.idle[:len(p.idle)-n]
		}
		if len(p.idle) == 0 {
			p.sweeping = false
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
	}
}
