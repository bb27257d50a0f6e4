package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/url"
	"sync"
	"time"

	"github.com/edgectl/edgectl/internal/rawio"
)

// Origin connection pool limits. The pool keeps enough idle connections
// that a busy edge never re-dials the origin for every request.
const (
	// maxIdleConns is the number of idle connections kept per application
	// whose connections are not limited (MaxConns 0); with a limit, every
	// connection may stay idle.
	maxIdleConns = 256
	// idleConnTimeout closes a connection that stayed idle that long.
	idleConnTimeout = 90 * time.Second
	// tcpKeepAlive is the period of TCP keep-alive probes to the origin.
	tcpKeepAlive = 30 * time.Second
	// connBufferSize is the size of each connection's read and write buffer.
	connBufferSize = 4 << 10
	// maxResponseHeaderBytes bounds the header section of an origin
	// response (with its interim 1xx responses), as net/http's server
	// bounds a request's.
	maxResponseHeaderBytes = 1 << 20
)

var errResponseHeaderTooLarge = errors.New("origin response header section too large")

// Errors of a request that found the application's origin connections all
// busy. The edge answers them 503 Service Unavailable with Retry-After.
var (
	// ErrQueueFull is returned when the wait queue is full.
	ErrQueueFull = errors.New("origin connection limit reached and the wait queue is full")
	// ErrQueueTimeout is returned when the wait in the queue lasted the
	// queue timeout.
	ErrQueueTimeout = errors.New("origin connection limit reached and no connection was freed within the queue timeout")
)

// waiter is a request waiting in the queue. Its channel receives a
// released connection, or nil: a slot to dial a new one.
type waiter struct{ ch chan *originConn }

var waiters = sync.Pool{New: func() any { return &waiter{ch: make(chan *originConn, 1)} }}

// originPool dials one application's origin and keeps its idle persistent
// connections on a LIFO stack, so that the connections in use stay warm
// and the ones at the bottom expire. It is safe for concurrent use and
// starts no goroutine per request: a single timer closes expired idle
// connections.
//
// With maxConns set, the pool also bounds the connections open at once
// (idle, in use and being dialed): a request that finds them all busy
// waits in a FIFO queue of at most maxQueue requests, for at most
// queueTimeout, until a connection is released (it is handed over as is)
// or closed (its slot is handed over, to dial a new one).
type originPool struct {
	addr         string
	tls          *tls.Config // nil for an http origin
	dialer       net.Dialer
	idleTimeout  time.Duration
	maxIdle      int
	maxConns     int // 0: unbounded
	maxQueue     int
	queueTimeout time.Duration

	mu   sync.Mutex
	idle []*originConn // oldest first
	// open counts the connections that hold a slot: idle, in use or
	// being dialed.
	open int
	// waiters is the queue of requests waiting for a slot, oldest first.
	waiters []*waiter
	// janitor closes expired idle connections; armed while idle is not
	// empty.
	janitor *time.Timer
	armed   bool
	closed  bool
}

// newOriginPool returns the pool of the origin u; tc is the TLS client
// configuration of an https origin, with its ServerName set.
func newOriginPool(u *url.URL, tc *tls.Config, connectTimeout time.Duration) *originPool {
	port := u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "https" {
			port = "443"
		}
	}
	return &originPool{
		addr:        net.JoinHostPort(u.Hostname(), port),
		tls:         tc,
		dialer:      net.Dialer{Timeout: connectTimeout, KeepAlive: tcpKeepAlive},
		idleTimeout: idleConnTimeout,
		maxIdle:     maxIdleConns,
	}
}

// originConn is one persistent HTTP/1.1 connection to an origin with its
// own reusable buffers.
type originConn struct {
	// conn carries HTTP: the TCP connection, or the TLS connection over it.
	conn net.Conn
	// tcp is the TCP connection, for the liveness probe.
	tcp   net.Conn
	probe *prober // made on the first probe
	src   headerLimitReader
	br    *bufio.Reader
	bw    *bufio.Writer
	// rr parses the responses, into memory the connection reuses.
	rr responseReader
	// idleSince is when the connection was returned to the pool.
	idleSince time.Time
	// abort closes the connection when the exchange's context is
	// cancelled; made once per connection.
	abort func()
}

// headerLimitReader reads from the connection; while limit is not
// negative, it fails once limit bytes were read, which bounds the header
// section of a response.
type headerLimitReader struct {
	conn  net.Conn
	limit int64
}

func (r *headerLimitReader) Read(p []byte) (int, error) {
	if r.limit < 0 {
		return r.conn.Read(p)
	}
	if r.limit == 0 {
		return 0, errResponseHeaderTooLarge
	}
	if int64(len(p)) > r.limit {
		p = p[:r.limit]
	}
	n, err := r.conn.Read(p)
	r.limit -= int64(n)
	return n, err
}

// dial opens a new connection to the origin: the TCP connect and, for an
// https origin, the TLS handshake each complete within the connect timeout
// and are abandoned when ctx is done.
func (p *originPool) dial(ctx context.Context) (*originConn, error) {
	tcp, err := p.dialer.DialContext(ctx, "tcp", p.addr)
	if err != nil {
		return nil, err
	}
	tcp = rawio.Wrap(tcp)
	conn := tcp
	if p.tls != nil {
		tc := tls.Client(tcp, p.tls)
		tcp.SetDeadline(time.Now().Add(p.dialer.Timeout))
		if err := tc.HandshakeContext(ctx); err != nil {
			tcp.Close()
			return nil, err
		}
		conn = tc
	}
	c := &originConn{conn: conn, tcp: tcp, src: headerLimitReader{conn: conn, limit: -1}}
	c.br = bufio.NewReaderSize(&c.src, connBufferSize)
	c.bw = bufio.NewWriterSize(conn, connBufferSize)
	// The TCP connection: closing it breaks a blocked TLS read or write at
	// once, without a close_notify that could wait on them.
	c.abort = func() { tcp.Close() }
	return c, nil
}

// get returns the most recently used idle connection that is still
// usable, or nil when there is none. Every pooled connection is probed:
// one the origin closed while it was idle is discarded, and so is one on
// which the origin sent bytes nobody asked for (they would be read as the
// answer to the next request, another client's).
func (p *originPool) get() *originConn {
	for {
		c := p.pop()
		if c == nil || c.alive() {
			return c
		}
		p.discard(c)
	}
}

// acquire returns a usable idle connection, or (nil, nil): a slot to
// dial a new connection with. When the connection limit is reached it
// waits in the queue; it fails with ErrQueueFull, ErrQueueTimeout or
// ctx's error (the client went away). The caller gives the slot back with
// release or discard.
func (p *originPool) acquire(ctx context.Context) (*originConn, error) {
	for {
		p.mu.Lock()
		if len(p.idle) > 0 {
			p.mu.Unlock()
			if c := p.get(); c != nil {
				return c, nil
			}
			continue
		}
		if p.maxConns <= 0 || p.open < p.maxConns {
			p.open++
			p.mu.Unlock()
			return nil, nil
		}
		if len(p.waiters) >= p.maxQueue {
			p.mu.Unlock()
			return nil, ErrQueueFull
		}
		w := waiters.Get().(*waiter)
		p.waiters = append(p.waiters, w)
		p.mu.Unlock()
		return p.wait(ctx, w)
	}
}

// wait waits in the queue for a connection or a slot.
func (p *originPool) wait(ctx context.Context, w *waiter) (*originConn, error) {
	timer := time.NewTimer(p.queueTimeout)
	defer timer.Stop()
	var err error
	select {
	case c := <-w.ch:
		waiters.Put(w)
		if c != nil && !c.alive() {
			// Handed over after an exchange, it may still have been
			// closed by the origin: its slot is ours.
			c.close()
			return nil, nil
		}
		return c, nil
	case <-timer.C:
		err = ErrQueueTimeout
	case <-ctx.Done():
		err = ctx.Err()
	}
	p.mu.Lock()
	queued := false
	for i, q := range p.waiters {
		if q == w {
			n := len(p.waiters)
			copy(p.waiters[i:], p.waiters[i+1:])
			p.waiters[n-1] = nil
			p.waiters = p.waiters[:n-1]
			queued = true
			break
		}
	}
	p.mu.Unlock()
	if !queued {
		// Served while giving up: pass it on.
		if c := <-w.ch; c != nil {
			p.release(c, true)
		} else {
			p.free()
		}
	}
	waiters.Put(w)
	return nil, err
}

// next dequeues the oldest waiter, or returns nil; p.mu is held.
func (p *originPool) next() *waiter {
	if len(p.waiters) == 0 {
		return nil
	}
	w := p.waiters[0]
	n := copy(p.waiters, p.waiters[1:])
	p.waiters[n] = nil
	p.waiters = p.waiters[:n]
	return w
}

// free gives back the slot of a connection that was closed (or never
// dialed): to the oldest waiter, else to the pool.
func (p *originPool) free() {
	p.mu.Lock()
	if w := p.next(); w != nil {
		p.mu.Unlock()
		w.ch <- nil
		return
	}
	if p.open > 0 {
		p.open--
	}
	p.mu.Unlock()
}

// discard closes c and gives back its slot.
func (p *originPool) discard(c *originConn) {
	c.close()
	p.free()
}

// pop takes the top of the idle stack.
func (p *originPool) pop() *originConn {
	p.mu.Lock()
	n := len(p.idle)
	if n == 0 {
		p.mu.Unlock()
		return nil
	}
	c := p.idle[n-1]
	p.idle[n-1] = nil
	p.idle = p.idle[:n-1]
	p.mu.Unlock()
	if time.Since(c.idleSince) >= p.idleTimeout {
		// The top is the newest: everything below expired too, and the
		// janitor is due.
		p.discard(c)
		return nil
	}
	return c
}

// release returns c to the pool when keep is set (the exchange completed
// and the connection can carry another request), and closes it otherwise.
func (p *originPool) release(c *originConn, keep bool) {
	if !keep {
		p.discard(c)
		return
	}
	now := time.Now()
	p.mu.Lock()
	if !p.closed {
		if w := p.next(); w != nil {
			p.mu.Unlock()
			w.ch <- c
			return
		}
	}
	if p.closed || len(p.idle) >= p.maxIdle {
		p.mu.Unlock()
		p.discard(c)
		return
	}
	c.idleSince = now
	p.idle = append(p.idle, c)
	if !p.armed {
		p.arm(p.idleTimeout)
	}
	p.mu.Unlock()
}

// arm schedules the janitor in d; p.mu is held.
func (p *originPool) arm(d time.Duration) {
	p.armed = true
	if p.janitor == nil {
		p.janitor = time.AfterFunc(d, p.sweep)
		return
	}
	p.janitor.Reset(d)
}

// sweep closes the idle connections that expired and re-arms the janitor
// for the oldest remaining one.
func (p *originPool) sweep() {
	now := time.Now()
	p.mu.Lock()
	n := 0
	for n < len(p.idle) && now.Sub(p.idle[n].idleSince) >= p.idleTimeout {
		n++
	}
	expired := make([]*originConn, n)
	copy(expired, p.idle[:n])
	rest := copy(p.idle, p.idle[n:])
	clear(p.idle[rest:])
	p.idle = p.idle[:rest]
	p.armed = false
	if rest > 0 && !p.closed {
		p.arm(p.idle[0].idleSince.Add(p.idleTimeout).Sub(now))
	}
	p.mu.Unlock()
	for _, c := range expired {
		p.discard(c)
	}
}

// close closes the idle connections; connections in use are closed when
// they are released. close may be called more than once.
func (p *originPool) close() {
	p.mu.Lock()
	idle := p.idle
	p.idle, p.closed = nil, true
	if p.janitor != nil {
		p.janitor.Stop()
	}
	p.mu.Unlock()
	for _, c := range idle {
		p.discard(c)
	}
}

func (c *originConn) close() { c.conn.Close() }

// alive reports whether an idle connection can carry a request: the origin
// neither closed it nor sent anything unsolicited.
func (c *originConn) alive() bool {
	if c.br.Buffered() > 0 {
		return false
	}
	if c.probe == nil {
		c.probe = newProber(c.tcp)
	}
	return c.probe.peerOpen()
}
