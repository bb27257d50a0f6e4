package proxy

import (
	"context"
	"crypto/tls"
	"net/http"
	"net/url"
	"time"
)

// Config describes one application's origin.
type Config struct {
	// URL is the origin's http or https URL; its path and query prefix
	// every request target.
	URL *url.URL
	// TLS is the client configuration of an https origin, with its
	// ServerName set; nil for an http origin.
	TLS *tls.Config
	// ConnectTimeout bounds the TCP connect and the TLS handshake.
	ConnectTimeout time.Duration
	// ResponseTimeout bounds writing the request, waiting for the response
	// head and each read of the response body.
	ResponseTimeout time.Duration
	// StripTrailers removes from the client's trailers the names the edge
	// sets itself, so that a trailer cannot forge them; nil strips none.
	StripTrailers func(http.Header)
	// MaxConns bounds the connections open to the origin at once; 0 leaves
	// them unbounded. A request that finds them all busy waits in a queue
	// of at most MaxQueue requests, for at most QueueTimeout.
	MaxConns     int
	MaxQueue     int
	QueueTimeout time.Duration
	// MaxBodySize is the largest request body accepted (ErrBodyTooLarge
	// past it); 0 accepts any.
	MaxBodySize int64
	// BufferSize, when positive, is how much of a request body is read
	// into memory before an origin connection is taken: a body up to that
	// size is sent whole from memory, the rest of a larger one streams.
	BufferSize int
}

// Origin is the client of one origin: a pool of persistent HTTP/1.1
// connections and the exchange that runs on the caller's goroutine. It is
// safe for concurrent use.
type Origin struct {
	url             *url.URL
	responseTimeout time.Duration
	stripTrailers   func(http.Header)
	maxBody         int64
	bufferSize      int
	pool            *originPool
}

// New returns the client of the origin c describes. It dials nothing until
// the first request.
func New(c Config) *Origin {
	p := newOriginPool(c.URL, c.TLS, c.ConnectTimeout)
	p.maxConns, p.maxQueue, p.queueTimeout = c.MaxConns, c.MaxQueue, c.QueueTimeout
	if p.maxConns > 0 {
		// Every connection the limit lets the pool open may stay idle
		// (until idleConnTimeout): a cap below the concurrency the edge
		// sees closed and re-dialled connections all the time, as the
		// 256 streams of 32 HTTP/2 clients did with a cap of 256.
		p.maxIdle = p.maxConns
	}
	return &Origin{
		url:             c.URL,
		responseTimeout: c.ResponseTimeout,
		stripTrailers:   c.StripTrailers,
		maxBody:         c.MaxBodySize,
		bufferSize:      c.BufferSize,
		pool:            p,
	}
}

// Queued returns how many requests wait for a connection.
func (o *Origin) Queued() int {
	o.pool.mu.Lock()
	defer o.pool.mu.Unlock()
	return len(o.pool.waiters)
}

// Open returns how many connections to the origin are open or being
// dialed; it is counted only when MaxConns bounds them.
func (o *Origin) Open() int {
	o.pool.mu.Lock()
	defer o.pool.mu.Unlock()
	return o.pool.open
}

// Close closes the idle connections and makes the pool keep no more; the
// exchanges in flight finish on their connections.
func (o *Origin) Close() { o.pool.close() }

// Idle returns how many idle connections the pool keeps.
func (o *Origin) Idle() int {
	o.pool.mu.Lock()
	defer o.pool.mu.Unlock()
	return len(o.pool.idle)
}

// Headers is a list of header fields, read by index so that the caller's
// own representation is passed without a copy.
type Headers interface {
	Len() int
	Field(i int) (name, value string)
}

// Outbound is how the edge rewrites one request for the origin.
type Outbound struct {
	// Host is the Host header sent to the origin; empty sends the host of
	// the origin's URL.
	Host string
	// Path is the rewritten path (with its query) joined to the origin's
	// path; empty joins the client's.
	Path string
	// NormalPath, when not empty, is the client's path as the edge
	// normalised it, escaped and without query; it is joined to the
	// origin's path instead of the client's own. The query is the
	// client's.
	NormalPath string
	// Filter holds the canonical names of the client's headers that are
	// not forwarded.
	Filter []string
	// Add holds the headers the edge adds, after the client's; nil adds
	// none.
	Add Headers
}

// ResponseWriter is where Relay sends the origin's response.
type ResponseWriter interface {
	http.ResponseWriter
	http.Flusher
}

// Exchange is one request sent to the origin and the head of its answer.
// The caller relays it (Relay) and then releases it (Release).
type Exchange struct {
	// Response is the origin's final response, its hop-by-hop headers
	// removed; the caller may edit its header before Relay. The Response,
	// its Header map and its Body belong to the origin connection, which
	// reuses them for its next response: none may be kept past Release.
	// The header's values (strings and slices) are the caller's to keep.
	Response *http.Response

	o   *Origin
	c   *originConn
	ctx context.Context
	// watch is the watch of ctx, stopped once (Release).
	watch ctxWatch
}

// RoundTrip sends r, rewritten by out, to the origin and reads the head of
// the response, on the caller's goroutine.
//
// Every step honours ctx: the wait for a connection in the queue, dialing,
// writing the request and reading the response (and, through Relay, its
// body). When ctx is cancelled (the client went away) the origin
// connection is closed, never returned to the pool, and the exchange fails
// with ctx's error. The exchange is also bounded by the response timeout.
//
// A request body larger than the maximum body size fails with
// ErrBodyTooLarge before the origin is contacted when its length is known;
// with buffering on, the body (up to the buffer size) is read before a
// connection is taken. A failure to read the client's request body is a
// *ClientBodyError. With the connection limit reached and the queue full
// or its wait over, RoundTrip fails with ErrQueueFull or ErrQueueTimeout.
func (o *Origin) RoundTrip(ctx context.Context, r *http.Request, out *Outbound) (Exchange, error) {
	host := out.Host
	if host == "" {
		host = o.url.Host
	}
	if n := bodyLength(r); n != 0 && (o.maxBody > 0 || o.bufferSize > 0) {
		if o.maxBody > 0 && n > o.maxBody {
			return Exchange{}, ErrBodyTooLarge
		}
		body := newRequestBody(r.Body, o.maxBody)
		orig := r.Body
		r.Body = body
		defer func() {
			r.Body = orig
			body.free()
		}()
		if o.bufferSize > 0 {
			if err := body.fill(o.bufferSize); err != nil {
				if err == ErrBodyTooLarge {
					return Exchange{}, err
				}
				return Exchange{}, &ClientBodyError{err}
			}
			if ctx.Err() != nil {
				return Exchange{}, ctx.Err()
			}
		}
	}
	c, resp, w, err := o.roundTrip(ctx, r, out, host)
	if err != nil {
		return Exchange{}, err
	}
	removeHopByHop(resp.Header)
	return Exchange{Response: resp, o: o, c: c, ctx: ctx, watch: w}, nil
}

// Release returns the exchange's connection to the pool when keep is set
// (Relay said it is reusable) and the exchange's context was not
// cancelled, else closes it.
func (x *Exchange) Release(keep bool) {
	if x.c != nil {
		if !x.watch.stop() {
			keep = false
		}
		x.o.pool.release(x.c, keep)
		x.c = nil
	}
}
