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
)

// Origin connection pool limits. The pool keeps enough idle connections
// that a busy edge never re-dials the origin for every request.
const (
	// maxIdleConns is the number of idle connections kept per application.
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

// originPool dials one application's origin and keeps its idle persistent
// connections on a LIFO stack, so that the connections in use stay warm
// and the ones at the bottom expire. It is safe for concurrent use and
// starts no goroutine per request: a single timer closes expired idle
// connections.
type originPool struct {
	addr        string
	tls         *tls.Config // nil for an http origin
	dialer      net.Dialer
	idleTimeout time.Duration
	maxIdle     int

	mu   sync.Mutex
	idle []*originConn // oldest first
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
	// idleSince is when the connection was returned to the pool.
	idleSince time.Time
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
		c.close()
	}
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
		c.close()
		return nil
	}
	return c
}

// release returns c to the pool when keep is set (the exchange completed
// and the connection can carry another request), and closes it otherwise.
func (p *originPool) release(c *originConn, keep bool) {
	if !keep {
		c.close()
		return
	}
	now := time.Now()
	p.mu.Lock()
	if p.closed || len(p.idle) >= p.maxIdle {
		p.mu.Unlock()
		c.close()
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
		c.close()
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
		c.close()
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
	// A raw read does not run once a read deadline has passed.
	c.tcp.SetReadDeadline(time.Time{})
	return c.probe.peerOpen()
}
