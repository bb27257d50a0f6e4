package h1

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"math"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http/httpguts"
)

// Server serves HTTP/1.x requests on connections handed to ServeConn. The
// zero value serves with no timeouts and DefaultMaxHeaderBytes; set
// Handler before use.
type Server struct {
	// Handler answers every request.
	Handler http.Handler
	// ConnContext, if not nil, returns the context of a connection's
	// requests, derived from context.Background.
	ConnContext func(ctx context.Context, c net.Conn) context.Context
	// ReadHeaderTimeout bounds the reading of a request's line and headers,
	// from its first byte (or, for a connection's first request, from
	// ServeConn).
	ReadHeaderTimeout time.Duration
	// IdleTimeout bounds the wait for the next request on a kept-alive
	// connection; zero means ReadHeaderTimeout.
	IdleTimeout time.Duration
	// BodyReadTimeout bounds each read of a request body (the wait between
	// two successive reads, as nginx's client_body_timeout); zero means no
	// bound.
	BodyReadTimeout time.Duration
	// WriteTimeout bounds each write to the client (the wait between two
	// successive writes, as nginx's send_timeout); zero means no bound.
	WriteTimeout time.Duration
	// MaxHeaderBytes bounds the request line and headers; larger requests
	// are answered 431. Zero means DefaultMaxHeaderBytes.
	MaxHeaderBytes int
	// ErrorLog, if not nil, receives handler panics other than
	// http.ErrAbortHandler.
	ErrorLog func(msg string, args ...any)

	shutdown atomic.Bool
	mu       sync.Mutex
	conns    map[*conn]struct{}
}

// DefaultMaxHeaderBytes is the request header limit when
// Server.MaxHeaderBytes is zero, as in net/http.
const DefaultMaxHeaderBytes = 1 << 20

// maxDrainBytes is how much of a request body the handler left unread is
// read and discarded to keep the connection; beyond it, the connection is
// closed instead (net/http's limit).
const maxDrainBytes = 256 << 10

// Connection states, for Shutdown.
const (
	stateIdle int32 = iota
	stateActive
	stateClosed
)

// ErrServerClosed is returned by ServeConn after Shutdown or Close.
var ErrServerClosed = errors.New("h1: server closed")

// ServeConn serves requests on c until the client closes it, a timeout
// expires, a response requires closing, or the server shuts down; then it
// closes c. If c is a *tls.Conn, its handshake must be complete; requests
// carry its ConnectionState.
func (s *Server) ServeConn(c net.Conn) error {
	if s.shutdown.Load() {
		c.Close()
		return ErrServerClosed
	}
	cn := newConn(s, c)
	if !s.track(cn) {
		cn.close()
		return ErrServerClosed
	}
	defer s.untrack(cn)
	cn.serve()
	return nil
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

// Shutdown stops serving gracefully: connections waiting for a request are
// closed at once, and each request in flight is answered (with
// "Connection: close") before its connection closes. It returns when every
// connection is closed, or ctx's error when ctx ends first; Close then
// cuts off the rest.
func (s *Server) Shutdown(ctx context.Context) error {
	s.shutdown.Store(true)
	wait := time.Millisecond
	for {
		if s.closeIdle() == 0 {
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

// closeIdle closes the connections that wait for a request and returns
// how many connections remain.
func (s *Server) closeIdle() int {
	s.mu.Lock()
	var idle []*conn
	for c := range s.conns {
		if c.state.CompareAndSwap(stateIdle, stateClosed) {
			idle = append(idle, c)
		}
	}
	n := len(s.conns)
	s.mu.Unlock()
	// Outside the lock: closing a TLS connection writes close_notify.
	for _, c := range idle {
		c.rwc.Close()
	}
	return n
}

// Close closes every connection at once, requests in flight included.
func (s *Server) Close() {
	s.shutdown.Store(true)
	s.mu.Lock()
	all := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		c.state.Store(stateClosed)
		all = append(all, c)
	}
	s.mu.Unlock()
	for _, c := range all {
		c.rwc.Close()
	}
}

// Open reports how many connections are being served.
func (s *Server) Open() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// conn is one client connection.
type conn struct {
	srv    *Server
	rwc    net.Conn
	lim    limitReader
	out    deadlineWriter
	br     *bufio.Reader
	bw     *bufio.Writer
	ctx    context.Context
	remote string
	tls    *tls.ConnectionState
	state  atomic.Int32
	res    response
}

var (
	readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4<<10) }}
	writerPool = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 4<<10) }}
)

func newConn(s *Server, c net.Conn) *conn {
	cn := &conn{srv: s, rwc: c, remote: c.RemoteAddr().String()}
	cn.lim.conn, cn.lim.timeout = c, s.BodyReadTimeout
	cn.br = readerPool.Get().(*bufio.Reader)
	cn.br.Reset(&cn.lim)
	cn.out.conn, cn.out.timeout = c, s.WriteTimeout
	cn.bw = writerPool.Get().(*bufio.Writer)
	cn.bw.Reset(&cn.out)
	cn.ctx = context.Background()
	if s.ConnContext != nil {
		cn.ctx = s.ConnContext(cn.ctx, c)
	}
	if tc, ok := c.(*tls.Conn); ok {
		st := tc.ConnectionState()
		cn.tls = &st
	}
	cn.res.c = cn
	cn.res.header = make(http.Header)
	return cn
}

func (c *conn) close() {
	c.state.Store(stateClosed)
	c.rwc.Close()
	c.br.Reset(nil)
	readerPool.Put(c.br)
	c.bw.Reset(nil)
	writerPool.Put(c.bw)
}

func (c *conn) maxHeaderBytes() int64 {
	if c.srv.MaxHeaderBytes > 0 {
		return int64(c.srv.MaxHeaderBytes)
	}
	return DefaultMaxHeaderBytes
}

func (c *conn) serve() {
	defer c.close()
	for first := true; ; first = false {
		// The request line and headers, from their first byte, are
		// bounded; net/http's slack lets a long request line through.
		c.lim.n, c.lim.body = c.maxHeaderBytes()+4096, false
		// Wait for the request's first byte, idle: Shutdown closes a
		// connection that has not started a request. The first request's
		// headers are due ReadHeaderTimeout after the handshake; later
		// ones wait up to IdleTimeout, then have ReadHeaderTimeout.
		switch {
		case first:
			c.setReadDeadline(c.srv.ReadHeaderTimeout)
		case c.br.Buffered() > 0:
			// A pipelined request is there: no wait.
		default:
			idle := c.srv.IdleTimeout
			if idle == 0 {
				idle = c.srv.ReadHeaderTimeout
			}
			c.setReadDeadline(idle)
		}
		if _, err := c.br.Peek(1); err != nil {
			return
		}
		if !c.state.CompareAndSwap(stateIdle, stateActive) {
			return // Shutdown closed the connection.
		}
		if !first {
			c.setReadDeadline(c.srv.ReadHeaderTimeout)
		}
		req, err := http.ReadRequest(c.br)
		if err != nil {
			c.refuse(err)
			return
		}
		c.lim.n = math.MaxInt64
		if req.Body != http.NoBody {
			// Each read of the body has BodyReadTimeout. Without a body,
			// nothing is read until the next request, whose wait sets its
			// own deadline: the header deadline can stay.
			c.lim.body = true
			c.rwc.SetReadDeadline(time.Time{})
		}
		if status, msg := checkRequest(req); status != 0 {
			c.reply(status, msg)
			return
		}
		if !c.serveRequest(req) || c.srv.shutdown.Load() {
			return
		}
		if !c.state.CompareAndSwap(stateActive, stateIdle) {
			return
		}
	}
}

func (c *conn) setReadDeadline(d time.Duration) {
	if d > 0 {
		c.rwc.SetReadDeadline(time.Now().Add(d))
	} else {
		c.rwc.SetReadDeadline(time.Time{})
	}
}

// refuse answers a request that could not be read, unless the client went
// away or was too slow, in which case there is nobody to answer.
func (c *conn) refuse(err error) {
	var ne net.Error
	switch {
	case c.lim.n <= 0:
		c.reply(http.StatusRequestHeaderFieldsTooLarge, "request header fields too large")
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.As(err, &ne) && ne.Timeout(), errors.Is(err, net.ErrClosed):
	case strings.Contains(err.Error(), "unsupported transfer encoding"):
		c.reply(http.StatusNotImplemented, "unsupported transfer encoding")
	default:
		c.reply(http.StatusBadRequest, "bad request")
	}
}

// reply writes a short plain-text error and marks the connection for
// closing; it is for requests the handler never sees.
func (c *conn) reply(status int, msg string) {
	body := http.StatusText(status) + ": " + msg + "\n"
	c.bw.WriteString("HTTP/1.1 ")
	writeStatus(c.bw, status)
	c.bw.WriteString("\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\nContent-Length: ")
	writeInt(c.bw, int64(len(body)))
	c.bw.WriteString("\r\n\r\n")
	c.bw.WriteString(body)
	c.bw.Flush()
}

// checkRequest adds to http.ReadRequest the checks of net/http's server;
// a non-zero status refuses the request.
func checkRequest(req *http.Request) (int, string) {
	if req.ProtoMajor != 1 {
		return http.StatusHTTPVersionNotSupported, "unsupported protocol version"
	}
	if req.Host == "" {
		if req.ProtoAtLeast(1, 1) && req.Method != http.MethodConnect {
			return http.StatusBadRequest, "missing required Host header"
		}
	} else if !httpguts.ValidHostHeader(req.Host) {
		return http.StatusBadRequest, "malformed Host header"
	}
	for k, vv := range req.Header {
		if !httpguts.ValidHeaderFieldName(k) {
			return http.StatusBadRequest, "invalid header name"
		}
		for _, v := range vv {
			if !httpguts.ValidHeaderFieldValue(v) {
				return http.StatusBadRequest, "invalid header value"
			}
		}
	}
	return 0, ""
}

// serveRequest runs the handler on req and finishes its response. It
// reports whether the connection can serve another request.
func (c *conn) serveRequest(req *http.Request) (keep bool) {
	req.RemoteAddr = c.remote
	req.TLS = c.tls
	req = req.WithContext(c.ctx)
	w := &c.res
	w.reset(req)
	if expectsContinue(req) {
		if req.ProtoAtLeast(1, 1) && req.ContentLength != 0 {
			w.continueBody.rc, w.continueBody.w = req.Body, w
			req.Body = &w.continueBody
		}
	} else if req.Header.Get("Expect") != "" {
		w.closeAfter = true
		w.header.Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusExpectationFailed)
		w.finish()
		return false
	}
	w.body = req.Body
	defer func() {
		if p := recover(); p != nil {
			keep = false
			if p != http.ErrAbortHandler && c.srv.ErrorLog != nil {
				buf := make([]byte, 16<<10)
				buf = buf[:runtime.Stack(buf, false)]
				c.srv.ErrorLog("panic serving request", "remote", c.remote, "panic", p, "stack", string(buf))
			}
			// Whatever the handler left half-written is not sent: the
			// client sees the connection close.
			c.bw.Reset(&c.out)
		}
	}()
	c.srv.Handler.ServeHTTP(w, req)
	w.finish()
	if w.closeAfter || w.err != nil {
		return false
	}
	return drain(w.body)
}

// drain reads what the handler left of a request body, up to
// maxDrainBytes, so the connection can read the next request.
func drain(body io.ReadCloser) bool {
	if body == nil || body == http.NoBody {
		return true
	}
	// Not body.Close: net/http's request body reads to its end on Close,
	// however long it is.
	_, err := io.CopyN(io.Discard, body, maxDrainBytes+1)
	return err == io.EOF
}

func expectsContinue(r *http.Request) bool {
	return httpguts.HeaderValuesContainsToken(r.Header["Expect"], "100-continue")
}

// limitReader reads from the connection. Until n bytes are read it
// reports io.EOF (it bounds the request line and headers); in a body, each
// read has its own deadline.
type limitReader struct {
	conn    net.Conn
	n       int64
	body    bool
	timeout time.Duration
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	if l.body && l.timeout > 0 {
		l.conn.SetReadDeadline(time.Now().Add(l.timeout))
	}
	n, err := l.conn.Read(p)
	l.n -= int64(n)
	return n, err
}

// deadlineWriter writes to the connection, each write with its own
// deadline (the bufio.Writer above it writes once per flush).
type deadlineWriter struct {
	conn    net.Conn
	timeout time.Duration
}

func (w *deadlineWriter) Write(p []byte) (int, error) {
	if w.timeout > 0 {
		w.conn.SetWriteDeadline(time.Now().Add(w.timeout))
	}
	return w.conn.Write(p)
}

// continueReader sends "100 Continue" before the first read of a body
// whose client waits for it.
type continueReader struct {
	rc io.ReadCloser
	w  *response
}

func (r *continueReader) Read(p []byte) (int, error) {
	w := r.w
	if !w.sentContinue && !w.wroteHeader {
		w.sentContinue = true
		w.c.bw.WriteString("HTTP/1.1 100 Continue\r\n\r\n")
		if err := w.c.bw.Flush(); err != nil {
			w.err = err
			return 0, err
		}
	}
	return r.rc.Read(p)
}

func (r *continueReader) Close() error { return r.rc.Close() }
