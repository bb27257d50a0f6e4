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
}

// Origin is the client of one origin: a pool of persistent HTTP/1.1
// connections and the exchange that runs on the caller's goroutine. It is
// safe for concurrent use.
type Origin struct {
	url             *url.URL
	responseTimeout time.Duration
	stripTrailers   func(http.Header)
	pool            *originPool
}

// New returns the client of the origin c describes. It dials nothing until
// the first request.
func New(c Config) *Origin {
	return &Origin{
		url:             c.URL,
		responseTimeout: c.ResponseTimeout,
		stripTrailers:   c.StripTrailers,
		pool:            newOriginPool(c.URL, c.TLS, c.ConnectTimeout),
	}
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
	// removed; the caller may edit its header before Relay.
	Response *http.Response

	o *Origin
	c *originConn
}

// RoundTrip sends r, rewritten by out, to the origin and reads the head of
// the response, on the caller's goroutine. ctx bounds dialing; the
// exchange itself is bounded by the response timeout. A failure to read
// the client's request body is a *ClientBodyError.
func (o *Origin) RoundTrip(ctx context.Context, r *http.Request, out *Outbound) (Exchange, error) {
	host := out.Host
	if host == "" {
		host = o.url.Host
	}
	c, resp, err := o.roundTrip(ctx, r, out, host)
	if err != nil {
		return Exchange{}, err
	}
	removeHopByHop(resp.Header)
	return Exchange{Response: resp, o: o, c: c}, nil
}

// Release returns the exchange's connection to the pool when keep is set
// (Relay said it is reusable), else closes it.
func (x *Exchange) Release(keep bool) {
	if x.c != nil {
		x.o.pool.release(x.c, keep)
		x.c = nil
	}
}
