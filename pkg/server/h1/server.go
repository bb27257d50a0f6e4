package h1

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgectl/edgectl/internal/cancelctx"
	"github.com/edgectl/edgectl/internal/park"
	"github.com/edgectl/edgectl/internal/rawio"
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
	// ConnIdle, if not nil, is called with a connection's context when
	// the connection has waited idleSettle (250 ms) for its next request
	// and goes on waiting on its socket alone (see waitIdle): the handler
	// may let go of what it keeps for the connection's next requests. It
	// runs on the connection's goroutine, between two requests.
	ConnIdle func(ctx context.Context)
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
	// Parker, if not nil, holds the connections served by ServeConnThen
	// while they wait idle: a connection still idle after idleSettle
	// (and ConnIdle) parks there and its goroutine returns; a new one
	// serves its next request (internal/park).
	Parker *park.Parker

	// A request's context is its connection's: it is cancelled when the
	// client goes away (see conn.startWatch), when writing to the client
	// fails, when the connection is closed, and by Close.

	shutdown atomic.Bool
	mu       sync.Mutex
	conns    map[*conn]struct{}

	// The watches armed since the sweeper's last pass (watch.go).
	watchMu               sync.Mutex
	watchList, watchSpare []watchEntry
	sweeping              bool
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
//
// When the connection ended because a request was refused before the
// handler saw it (malformed, ambiguous framing, too large), ServeConn
// returns a *ProtocolError saying with what status and why; otherwise
// nil, or ErrServerClosed.
func (s *Server) ServeConn(c net.Conn) error {
	ch := make(chan error, 1)
	s.serveConn(c, false, func(err error) { ch <- err })
	return <-ch
}

// ServeConnThen serves c as ServeConn does, and calls done with what
// ServeConn would return once c is closed. With Parker set it may return
// before: a connection idle for idleSettle parks, without a goroutine,
// and done is called on whichever goroutine ends the connection.
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
		cn.close()
		done(ErrServerClosed)
		return
	}
	cn.mayPark, cn.done = mayPark, done
	cn.run(true, false, false)
}

// run serves the connection from the wait for its next request (or, woken
// from a park by its socket, from that wait's end) until it parks or ends;
// at its end, it calls done.
func (c *conn) run(first, woken, readable bool) {
	perr, parked := c.serve(first, woken, readable)
	if parked {
		return // c is the woken goroutine's
	}
	c.srv.untrack(c)
	if perr != nil {
		c.done(perr) // not a nil *ProtocolError in an error
	} else {
		c.done(nil)
	}
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
		c.unpark()
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
		c.ctx.Cancel()
		c.rwc.Close()
		c.unpark()
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
	srv  *Server
	rwc  net.Conn
	lim  limitReader
	scan headerScan
	out  deadlineWriter
	br   *bufio.Reader
	bw   *bufio.Writer
	// ctx is the context of the connection's requests, cancelled when
	// the client goes away (one per connection, in it).
	ctx    cancelctx.Context
	remote string
	tls    *tls.ConnectionState
	state  atomic.Int32
	res    response
	watch  watch
	// base is the Request every request starts from: it carries the
	// connection's context, its remote address and TLS state.
	base *http.Request
	// rr parses the requests; taken from requestReaders for a request,
	// given back once it is served.
	rr *requestReader
	// holding is whether br and bw are taken (for tests).
	holding atomic.Bool

	// mayPark is whether the connection parks in srv.Parker when idle;
	// done is called once it is closed (ServeConnThen).
	mayPark bool
	done    func(error)
	// spot is the connection's place in srv.Parker.
	spot park.Spot
	// first is whether the parked wait was for the first request.
	first bool
	// wakeFn is c.wake, made once.
	wakeFn func(readable bool)
}

var (
	readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4<<10) }}
	writerPool = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 4<<10) }}
)

func newConn(s *Server, c net.Conn) *conn {
	cn := &conn{srv: s, rwc: c, remote: c.RemoteAddr().String()}
	cn.lim.conn, cn.lim.timeout, cn.lim.scan = c, s.BodyReadTimeout, &cn.scan
	// The buffers are taken when the first request's first byte arrives
	// (waitIdle).
	ctx := context.Background()
	if s.ConnContext != nil {
		ctx = s.ConnContext(ctx, c)
	}
	// One context for the connection, not one per request: a client that
	// goes away ends the connection, so cancelling it cancels the one
	// request it had in flight.
	cn.ctx.Init(ctx)
	cn.out.conn, cn.out.timeout, cn.out.cancel = c, s.WriteTimeout, cn.ctx.Cancel
	cn.watch.c, cn.watch.done = cn, make(chan struct{}, 1)
	cn.res.c = cn // its header map is made by its first reset
	cn.wakeFn = cn.wake
	cn.makeBase()
	return cn
}

// makeBase makes the Request every request starts from, with the
// connection's TLS state. A parked connection lets both go (park), and
// its next request makes them again.
func (c *conn) makeBase() {
	if tc, ok := c.rwc.(*tls.Conn); ok {
		st := tc.ConnectionState()
		c.tls = &st
	}
	c.base = (&http.Request{RemoteAddr: c.remote, TLS: c.tls}).WithContext(&c.ctx)
}

func (c *conn) close() {
	c.state.Store(stateClosed)
	c.ctx.Cancel()
	c.rwc.Close()
	c.putBuffers()
	c.putReader()
}

// putReader gives the request reader back to the pool.
func (c *conn) putReader() {
	if c.rr != nil {
		c.rr.release()
		c.rr = nil
	}
}

// An idle connection holds no buffer: between two requests, when nothing
// of the next one is buffered, the connection gives its read and write
// buffers back to the pools (as nginx frees its buffers on an idle
// connection) and waits for the next request with a read of one byte,
// straight from the connection, on a short stack; when that byte comes, it
// takes buffers again and the byte is read first (limitReader.pending).
// A request already buffered (pipelined, or read ahead by the watch)
// keeps the buffers: nothing buffered is ever dropped. Of a TLS
// connection's own buffers, crypto/tls keeps what it needs: a one-byte
// read decrypts a whole record and keeps the rest for the next reads.
//
// The buffers are only touched by the connection's goroutine and by the
// handler while it runs, never after it returned (a ResponseWriter must
// not be used after ServeHTTP returns).

// takeBuffers gives the connection its read and write buffers, if it
// gave them back.
func (c *conn) takeBuffers() {
	if c.br != nil {
		return
	}
	c.br = readerPool.Get().(*bufio.Reader)
	c.br.Reset(&c.lim)
	c.bw = writerPool.Get().(*bufio.Writer)
	c.bw.Reset(&c.out)
	c.holding.Store(true)
}

// putBuffers gives the buffers back to the pools.
func (c *conn) putBuffers() {
	if c.br == nil {
		return
	}
	c.br.Reset(nil)
	readerPool.Put(c.br)
	c.bw.Reset(nil)
	writerPool.Put(c.bw)
	c.br, c.bw = nil, nil
	c.holding.Store(false)
}

// idle reports whether the connection holds nothing of the next request
// or of a response: its buffers can go.
func (c *conn) idle() bool {
	return c.br == nil || (c.br.Buffered() == 0 && c.bw.Buffered() == 0 && !c.lim.pending)
}

// waitIdle gives the buffers back, waits up to d (zero: without a bound)
// for the next request's first byte and takes buffers again. It reports
// waitEnd when the client closed the connection, d expired or Shutdown
// closed it, and waitParked when the connection parked (below). With
// keep, the read deadline stays at d after the wait (the caller sets its
// own otherwise).
//
// A connection still idle after idleSettle stops waiting in crypto/tls's
// read, whose frames keep the goroutine's stack at 8 KB, and waits for
// the socket to be readable instead: parked in srv.Parker, with no
// goroutine at all (park), or, without a Parker, on its goroutine
// (rawio.WaitReadable), a few frames deep, where the garbage collector
// shrinks the stack to 4 KB. Only a read that timed out may do so: it
// proves that crypto/tls holds no record of the next request (it returns
// buffered data without reading the socket), and a timeout leaves a
// tls.Conn usable. A connection that is not idle that long (keep-alive
// traffic) pays nothing more than one read.
//
//go:noinline
func (c *conn) waitIdle(d time.Duration, keep bool) waited {
	c.putBuffers()
	now := time.Now() // one clock read for both deadlines
	var end time.Time
	if d > 0 {
		end = now.Add(d)
	}
	settle := d <= 0 || d > idleSettle
	if settle {
		c.rwc.SetReadDeadline(now.Add(idleSettle))
	} else {
		c.rwc.SetReadDeadline(end)
	}
	n, err := c.rwc.Read(c.lim.ahead[:])
	if n == 0 && settle && isTimeout(err) {
		c.rwc.SetReadDeadline(end)
		c.res.release()
		if c.srv.ConnIdle != nil {
			c.srv.ConnIdle(&c.ctx)
		}
		if c.mayPark && c.park(end) {
			return waitParked
		}
		if !rawio.WaitReadable(c.rwc, &c.lim.ahead) {
			return waitEnd
		}
		n, _ = c.rwc.Read(c.lim.ahead[:])
	} else if n > 0 && settle && keep {
		c.rwc.SetReadDeadline(end)
	}
	return c.gotByte(n)
}

// gotByte ends a wait that read n bytes (0 or 1) of the next request.
func (c *conn) gotByte(n int) waited {
	if n == 0 {
		// io.EOF, a timeout, a closed connection: nobody to answer.
		return waitEnd
	}
	c.lim.pending, c.lim.pendingByte = true, c.lim.ahead[0]
	c.takeBuffers()
	return waitDone
}

// waited is how a wait for the next request ended.
type waited uint8

const (
	waitEnd    waited = iota // the connection is done
	waitDone                 // the request's first byte is read
	waitParked               // parked: the goroutine gives the connection up
)

// park parks the connection in srv.Parker until its socket turns
// readable or end passes (zero: no bound), and reports whether it did.
// If it did, the connection is no longer the caller's: wake may already
// be serving it on another goroutine.
func (c *conn) park(end time.Time) bool {
	rc := rawio.SocketConn(c.rwc)
	if rc == nil {
		return false
	}
	// What the next request can make again, about 0.5 KB.
	c.base, c.tls = nil, nil
	if err := c.srv.Parker.Park(&c.spot, rc, end, c.wakeFn); err != nil {
		return false // closed, or not a socket: the caller waits itself
	}
	if c.state.Load() == stateClosed {
		// Shutdown or Close came between the read and the park, and
		// found nothing parked to cancel.
		c.srv.Parker.Cancel(&c.spot)
	}
	return true
}

// wake carries on serving a parked connection, on a goroutine of its own:
// its socket turned readable (readable), or its deadline passed or the
// server cancelled its park.
func (c *conn) wake(readable bool) {
	c.run(c.first, true, readable)
}

// unpark wakes the connection if it is parked: Shutdown and Close closed
// it, and closing a parked socket wakes nobody.
func (c *conn) unpark() {
	if c.srv.Parker != nil {
		c.srv.Parker.Cancel(&c.spot)
	}
}

// idleSettle is how long an idle connection waits in crypto/tls's read
// before it waits on its socket alone (waitIdle).
const idleSettle = 250 * time.Millisecond

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func (c *conn) maxHeaderBytes() int64 {
	if c.srv.MaxHeaderBytes > 0 {
		return int64(c.srv.MaxHeaderBytes)
	}
	return DefaultMaxHeaderBytes
}

// serve serves requests until the connection is done (then it is
// closed) or parks. Woken from a park, it first ends the parked wait:
// with readable false, the connection is done.
func (c *conn) serve(first, woken, readable bool) (perr *ProtocolError, parked bool) {
	defer func() {
		if !parked {
			c.close()
		}
	}()
	// The loop's frame is small: the connection's goroutine waits for the
	// next request in wait, and serves it in serveNext, whose frames are
	// gone while it waits.
	for ; ; first = false {
		var w waited
		if woken {
			w, woken = waitEnd, false
			if readable {
				n, _ := c.rwc.Read(c.lim.ahead[:])
				w = c.gotByte(n)
			}
		} else {
			w = c.wait(first)
		}
		switch w {
		case waitEnd:
			return nil, false
		case waitParked:
			return nil, true
		}
		if keep, perr := c.serveNext(first); !keep {
			return perr, false
		}
	}
}

// wait waits for the next request's first byte.
func (c *conn) wait(first bool) waited {
	// The request line and headers, from their first byte, are
	// bounded; net/http's slack lets a long request line through.
	c.lim.n, c.lim.body = c.maxHeaderBytes()+4096, false
	// Wait for the request's first byte, idle: Shutdown closes a
	// connection that has not started a request. The first request's
	// headers are due ReadHeaderTimeout after the handshake; later
	// ones wait up to IdleTimeout, then have ReadHeaderTimeout.
	switch {
	case first:
		// The headers are due ReadHeaderTimeout after the handshake.
		c.first = true
		return c.waitIdle(c.srv.ReadHeaderTimeout, true)
	case c.br.Buffered() > 0:
		// A pipelined request is there: no wait.
	default:
		idle := c.srv.IdleTimeout
		if idle == 0 {
			idle = c.srv.ReadHeaderTimeout
		}
		if c.idle() {
			c.first = false
			return c.waitIdle(idle, false)
		}
		// The watch read the next request's first byte.
		c.setReadDeadline(idle)
	}
	return waitDone
}

// serveNext reads, checks and serves the request whose first byte wait
// saw. It reports whether the connection serves another request, and the
// *ProtocolError that refused this one, if any.
//
//go:noinline
func (c *conn) serveNext(first bool) (keep bool, perr *ProtocolError) {
	if _, err := c.br.Peek(1); err != nil {
		return false, nil
	}
	if !c.state.CompareAndSwap(stateIdle, stateActive) {
		return false, nil // Shutdown closed the connection.
	}
	req, err := c.readRequest(first)
	if err != nil {
		return false, c.refuse(err)
	}
	c.lim.n = math.MaxInt64
	if req.Body != http.NoBody {
		// Each read of the body has BodyReadTimeout. Without a body,
		// nothing is read until the next request, whose wait sets its
		// own deadline: the header deadline can stay.
		c.lim.body = true
		c.rwc.SetReadDeadline(time.Time{})
	}
	if perr := c.checkRequest(req); perr != nil {
		c.reply(perr)
		return false, perr
	}
	keep = c.serveRequest(req)
	// Nothing of the request is kept while the connection waits for the
	// next one.
	c.res.forget()
	c.putReader()
	if !keep || c.srv.shutdown.Load() {
		return false, nil
	}
	return c.state.CompareAndSwap(stateActive, stateIdle), nil
}

// readRequest parses the next request (parse.go) while c.scan watches
// the same bytes: first those already buffered, then those the parser
// reads from the connection. The request carries the connection's
// context, remote address and TLS state.
//
// The first request's headers are due ReadHeaderTimeout after the
// handshake (wait set that deadline). A later request's are due
// ReadHeaderTimeout after its first byte, unless they are all buffered
// already (a pipelined request, or one read ahead whole): then the parser
// reads nothing from the connection, and the deadline is not touched
// (each body read sets its own, as do the next wait and the watch). After
// an idle wait only the one byte that wait read is buffered, so the
// deadline is set.
func (c *conn) readRequest(first bool) (*http.Request, error) {
	c.scan = headerScan{}
	buffered, _ := c.br.Peek(c.br.Buffered())
	c.scan.feed(buffered)
	if !first && !c.scan.done {
		c.setReadDeadline(c.srv.ReadHeaderTimeout)
	}
	c.lim.scanning = !c.scan.done
	if c.rr == nil {
		c.rr = requestReaders.Get().(*requestReader)
	}
	if c.base == nil {
		c.makeBase()
	}
	req, err := c.rr.read(c.br, c.base)
	c.lim.scanning = false
	return req, err
}

func (c *conn) setReadDeadline(d time.Duration) {
	if d > 0 {
		c.rwc.SetReadDeadline(time.Now().Add(d))
	} else {
		c.rwc.SetReadDeadline(time.Time{})
	}
}

// refuse answers a request that could not be read, unless the client went
// away or was too slow, in which case there is nobody to answer and it
// returns nil.
func (c *conn) refuse(err error) *ProtocolError {
	var ne net.Error
	var perr *ProtocolError
	switch {
	case c.lim.n <= 0:
		perr = protocolError(http.StatusRequestHeaderFieldsTooLarge, ErrHeaderTooLarge)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.As(err, &ne) && ne.Timeout(), errors.Is(err, net.ErrClosed):
		return nil
	case c.scan.emptyRL:
		perr = protocolError(http.StatusBadRequest, ErrLeadingEmptyLine)
	case c.scan.done && c.scan.encodings > 0 && !c.scan.encodingSupported() && c.scan.atLeast11():
		// The parser's only refusal of a whole header with such a
		// field is the transfer coding (net/http answers 501 too).
		perr = protocolError(http.StatusNotImplemented, ErrUnsupportedTransferEncoding)
	default:
		perr = protocolError(http.StatusBadRequest, fmt.Errorf("%w: %w", ErrMalformed, err))
	}
	c.reply(perr)
	return perr
}

// reply writes a short plain-text error for a request the handler never
// sees; the connection is closed after it.
func (c *conn) reply(perr *ProtocolError) {
	msg := perr.Err.Error()
	if errors.Is(perr, ErrMalformed) {
		// Not the parser's text: it quotes the request back.
		msg = ErrMalformed.Error()
	}
	body := http.StatusText(perr.Status) + ": " + msg + "\n"
	c.bw.WriteString("HTTP/1.1 ")
	writeStatus(c.bw, perr.Status)
	c.bw.WriteString("\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\nContent-Length: ")
	writeInt(c.bw, int64(len(body)))
	c.bw.WriteString("\r\n\r\n")
	c.bw.WriteString(body)
	c.bw.Flush()
}

// checkRequest adds to the parser (http.ReadRequest's rules) the checks
// of net/http's server and the framing rules of RFC 9112 that net/http
// does not apply; a non-nil error refuses the request. A request with
// both Content-Length and Transfer-Encoding is read as chunked (the
// parser does so) and marked req.Close: the connection closes after its
// response (RFC 9112 §6.1).
func (c *conn) checkRequest(req *http.Request) *ProtocolError {
	s := &c.scan
	switch {
	case req.ProtoMajor != 1:
		return protocolError(http.StatusHTTPVersionNotSupported, ErrVersion)
	case s.obsFold:
		return protocolError(http.StatusBadRequest, ErrObsFold)
	case !validMethod(req.Method):
		return protocolError(http.StatusBadRequest, ErrMethod)
	case req.RequestURI == "*" && req.Method != http.MethodOptions:
		return protocolError(http.StatusBadRequest, ErrAsteriskForm)
	case s.hosts == 0 && req.ProtoAtLeast(1, 1) && req.Method != http.MethodConnect:
		return protocolError(http.StatusBadRequest, ErrMissingHost)
	case s.badHost, req.Host != "" && !httpguts.ValidHostHeader(req.Host):
		return protocolError(http.StatusBadRequest, ErrHost)
	case s.encodings > 0 && !req.ProtoAtLeast(1, 1):
		return protocolError(http.StatusBadRequest, ErrTransferEncoding10)
	}
	for k, vv := range req.Header {
		if !httpguts.ValidHeaderFieldName(k) {
			return protocolError(http.StatusBadRequest, ErrHeaderName)
		}
		for _, v := range vv {
			if !httpguts.ValidHeaderFieldValue(v) {
				return protocolError(http.StatusBadRequest, ErrHeaderValue)
			}
		}
	}
	if !expectsContinue(req) && req.Header.Get("Expect") != "" {
		return protocolError(http.StatusExpectationFailed, ErrExpectation)
	}
	if s.lengths > 0 && s.encodings > 0 {
		req.Close = true
	}
	return nil
}

// validMethod reports whether m is a method nginx accepts: one or more of
// A-Z, "-" and "_" (ngx_http_parse_request_line). Every registered method
// is of this form; a lower-case "get" is not GET.
func validMethod(m string) bool {
	for i := 0; i < len(m); i++ {
		if b := m[i]; (b < 'A' || b > 'Z') && b != '-' && b != '_' {
			return false
		}
	}
	return m != ""
}

// serveRequest runs the handler on req and finishes its response. It
// reports whether the connection can serve another request.
func (c *conn) serveRequest(req *http.Request) (keep bool) {
	w := &c.res
	w.reset(req)
	if expectsContinue(req) && req.ProtoAtLeast(1, 1) && req.ContentLength != 0 {
		w.continueBody.rc, w.continueBody.w = req.Body, w
		req.Body = &w.continueBody
	}
	if req.Body != http.NoBody {
		// Once the handler has read the body to its end, the connection
		// is watched for the client going away.
		w.watchBody.rc, w.watchBody.c = req.Body, c
		req.Body = &w.watchBody
	}
	w.body = req.Body
	c.watch.inHandler = true
	if req.Body == http.NoBody {
		c.startWatch()
	}
	defer func() {
		c.watch.inHandler = false
		if p := recover(); p != nil {
			c.stopWatch()
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
	if !c.stopWatch() {
		// The client went away while the handler ran.
		return false
	}
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
	// While scanning, what is read is fed to scan.
	scanning bool
	scan     *headerScan
	// pending is set when the watch read a byte of the next request:
	// pendingByte is returned first.
	pending     bool
	pendingByte byte
	// ahead receives the byte an idle connection waits for (waitIdle).
	ahead [1]byte
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	if l.pending && len(p) > 0 {
		// The byte the connection's watch read ahead.
		l.pending = false
		p[0] = l.pendingByte
		l.n--
		if l.scanning {
			l.scan.feed(p[:1])
			l.scanning = !l.scan.done
		}
		return 1, nil
	}
	if l.body && l.timeout > 0 {
		l.conn.SetReadDeadline(time.Now().Add(l.timeout))
	}
	n, err := l.conn.Read(p)
	l.n -= int64(n)
	if l.scanning {
		l.scan.feed(p[:n])
		l.scanning = !l.scan.done
	}
	return n, err
}

// deadlineWriter writes to the connection, each write with its own
// deadline (the bufio.Writer above it writes once per flush).
type deadlineWriter struct {
	conn    net.Conn
	timeout time.Duration
	// cancel is called when a write fails: the client is gone or too slow,
	// and the request's work is cancelled.
	cancel context.CancelFunc
}

func (w *deadlineWriter) Write(p []byte) (int, error) {
	if w.timeout > 0 {
		w.conn.SetWriteDeadline(time.Now().Add(w.timeout))
	}
	n, err := w.conn.Write(p)
	if err != nil {
		w.cancel()
	}
	return n, err
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
