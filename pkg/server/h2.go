package server

import (
	"context"
	"io"
	"math"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgectl/edgectl/pkg/edge"
)

// HTTP/2 has the timeouts of HTTP/1.x, from the same settings:
//
//   - HeaderTimeout: a connection whose first request has not arrived
//     (its HEADERS and CONTINUATION frames complete) HeaderTimeout after
//     the handshake is closed (h2Conn).
//   - IdleTimeout: a connection with no stream open for IdleTimeout is
//     closed (net/http's http2 server, from http.Server.IdleTimeout).
//   - BodyTimeout: a stream whose handler waits longer than BodyTimeout
//     for the next bytes of its request body is reset (h2Stream).
//   - WriteTimeout: a stream whose handler waits longer than WriteTimeout
//     for a write of its response to be taken is reset (h2Stream): a
//     client whose flow-control window stays closed (zero), or that reads
//     nothing at all, stalls exactly these writes. A connection on which
//     nothing at all can be written for WriteTimeout is closed
//     (http.HTTP2Config.WriteByteTimeout).
//
// A reset stream's request context is cancelled, which ends the origin
// exchange. net/http's http2 server bounds the rest: streams per
// connection (MaxConcurrentStreams; handlers beyond it wait, and a client
// that opens and resets streams faster than they finish has its
// connection closed with ENHANCE_YOUR_CALM, the rapid-reset defence), and
// header blocks (MaxHeaderBytes; a block larger than that, or
// CONTINUATION frames after an oversized one, close the connection).

// h2Config is the http2 server's configuration.
func (s *Server) h2Config() *http.HTTP2Config {
	return &http.HTTP2Config{
		MaxConcurrentStreams: s.cfg.MaxConcurrentStreams,
		WriteByteTimeout:     s.cfg.WriteTimeout,
		CountError:           s.metrics.h2Error,
	}
}

// h2Conn is the edge's state of an HTTP/2 connection.
type h2Conn struct {
	// requested is set when the first request arrives.
	requested atomic.Bool
	// headerTimer closes the connection when no request has arrived
	// HeaderTimeout after the handshake.
	headerTimer *time.Timer
}

type h2ConnKey struct{}

// deliverH2 hands an HTTP/2 connection to the http2 server, closing it
// when no request has arrived HeaderTimeout later.
func (s *Server) deliverH2(c net.Conn) {
	hc := &h2Conn{}
	s.h2conns.Store(c, hc)
	hc.headerTimer = time.AfterFunc(s.cfg.HeaderTimeout, func() {
		if !hc.requested.Load() {
			s.metrics.h2Timeouts.WithLabelValues("header").Inc()
			s.log.Debug("HTTP/2 connection closed: no request within the header timeout", "remote", c.RemoteAddr().String(), "timeout", s.cfg.HeaderTimeout.String())
			c.Close()
		}
	})
	if !s.h2ln.deliver(c) {
		// Shutting down: the connection was closed.
		s.h2ConnState(c, http.StateClosed)
	}
}

// h2ConnContext is the http2 server's ConnContext: edge's, and the
// connection's h2Conn.
func (s *Server) h2ConnContext(ctx context.Context, c net.Conn) context.Context {
	ctx = edge.ConnContext(ctx, c)
	if hc, ok := s.h2conns.Load(c); ok {
		ctx = context.WithValue(ctx, h2ConnKey{}, hc)
	}
	return ctx
}

// h2ConnState is the http2 server's ConnState: a closed connection is
// forgotten and no longer counts as open.
func (s *Server) h2ConnState(c net.Conn, state http.ConnState) {
	if state != http.StateClosed && state != http.StateHijacked {
		return
	}
	if hc, ok := s.h2conns.LoadAndDelete(c); ok {
		hc.(*h2Conn).headerTimer.Stop()
		s.metrics.open.Add(-1)
	}
}

// serveH2 serves one HTTP/2 stream under its body and write timeouts.
func (s *Server) serveH2(w http.ResponseWriter, r *http.Request) {
	if hc, ok := r.Context().Value(h2ConnKey{}).(*h2Conn); ok {
		hc.requested.Store(true)
	}
	st := &h2Stream{s: s, w: w, rc: http.NewResponseController(w)}
	st.timer = time.AfterFunc(math.MaxInt64, st.check)
	defer st.finish()
	if r.Body != nil && r.Body != http.NoBody {
		st.body = r.Body
		r.Body = (*h2Body)(st)
	}
	s.serveEdge((*h2Writer)(st), r)
	if st.unflushed {
		// What the handler wrote but the http2 server still buffers is
		// sent under the write timeout too: after the handler returns,
		// it would wait for the client's window without limit.
		(*h2Writer)(st).FlushError()
	}
}

// h2Stream watches one stream's body reads and response writes: one
// timer, re-armed when a read or write begins, that resets the stream
// when one has been waiting longer than its timeout.
type h2Stream struct {
	s     *Server
	w     http.ResponseWriter
	rc    *http.ResponseController
	body  io.ReadCloser
	timer *time.Timer
	// reading and writing are when the current body read or response
	// write began (UnixNano), 0 when there is none.
	reading, writing atomic.Int64
	// unflushed is set when the handler wrote since its last flush.
	unflushed bool

	mu   sync.Mutex // guards done and the reset, against the handler's return
	done bool
}

func (st *h2Stream) begin(since *atomic.Int64) {
	since.Store(time.Now().UnixNano())
	d := st.s.cfg.WriteTimeout
	if since == &st.reading {
		d = st.s.cfg.BodyTimeout
	}
	st.timer.Reset(d)
}

func (st *h2Stream) end(since *atomic.Int64) { since.Store(0) }

// check runs when the timer fires: it resets the stream if a read or a
// write has waited too long, or re-arms the timer for the one under way.
func (st *h2Stream) check() {
	now := time.Now().UnixNano()
	var next time.Duration
	for _, op := range [...]struct {
		since   int64
		timeout time.Duration
		name    string
	}{
		{st.reading.Load(), st.s.cfg.BodyTimeout, "body"},
		{st.writing.Load(), st.s.cfg.WriteTimeout, "write"},
	} {
		if op.since == 0 {
			continue
		}
		left := time.Duration(op.since + int64(op.timeout) - now)
		if left <= 0 {
			st.reset(op.name)
			return
		}
		if next == 0 || left < next {
			next = left
		}
	}
	if next > 0 {
		st.timer.Reset(next)
	}
}

// reset resets the stream (RST_STREAM INTERNAL_ERROR), which cancels its
// request's context and fails the handler's pending read or write.
func (st *h2Stream) reset(timeout string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.done {
		return
	}
	st.done = true
	st.s.metrics.h2Timeouts.WithLabelValues(timeout).Inc()
	// A deadline in the past resets the stream at once.
	st.rc.SetWriteDeadline(time.Unix(1, 0))
}

// finish stops the watch before the handler returns: the http2 server
// reuses the stream's writer afterwards.
func (st *h2Stream) finish() {
	st.timer.Stop()
	st.mu.Lock()
	st.done = true
	st.mu.Unlock()
}

// h2Body is a stream's request body, each read under BodyTimeout.
type h2Body h2Stream

func (b *h2Body) Read(p []byte) (int, error) {
	st := (*h2Stream)(b)
	st.begin(&st.reading)
	n, err := st.body.Read(p)
	st.end(&st.reading)
	return n, err
}

func (b *h2Body) Close() error { return b.body.Close() }

// h2Writer is a stream's response writer, each write and flush under
// WriteTimeout.
type h2Writer h2Stream

func (w *h2Writer) Header() http.Header { return w.w.Header() }

func (w *h2Writer) WriteHeader(code int) { w.w.WriteHeader(code) }

func (w *h2Writer) Write(p []byte) (int, error) {
	st := (*h2Stream)(w)
	st.begin(&st.writing)
	n, err := st.w.Write(p)
	st.end(&st.writing)
	st.unflushed = st.unflushed || n > 0
	return n, err
}

func (w *h2Writer) Flush() { w.FlushError() }

func (w *h2Writer) FlushError() error {
	st := (*h2Stream)(w)
	st.begin(&st.writing)
	err := st.rc.Flush()
	st.end(&st.writing)
	st.unflushed = false
	return err
}

// Unwrap gives http.ResponseController the http2 server's writer.
func (w *h2Writer) Unwrap() http.ResponseWriter { return w.w }

var (
	_ http.ResponseWriter = (*h2Writer)(nil)
	_ http.Flusher        = (*h2Writer)(nil)
	_ io.ReadCloser       = (*h2Body)(nil)
)
