package proxy

import (
	"context"
	"errors"
	"io"
	"net/http"
	"syscall"
	"time"
)

// maxInterimResponses bounds the 1xx responses skipped before the final
// one, as http.Transport does.
const maxInterimResponses = 5

var (
	errUnexpectedSwitch = errors.New("origin switched protocols without being asked to")
	errTooManyInterim   = errors.New("origin sent too many 1xx informational responses")
)

// staleConnError is the failure of a connection before the origin sent a
// byte of its response: the origin had closed it, so a request that can
// be replayed is retried once on a new connection.
type staleConnError struct{ err error }

func (e *staleConnError) Error() string { return e.err.Error() }
func (e *staleConnError) Unwrap() error { return e.err }

// roundTrip sends r to the origin and reads the head of the response, on
// the caller's goroutine. It takes the most recently used idle connection,
// or dials one. Pooled connections are probed first (see originPool.get);
// a replayable request (see replayable) whose pooled connection still
// fails before the first byte of the response (the origin closed it after
// the probe) is retried once on a new connection. A request that is not
// replayable is never retried.
// On success the caller owns c and releases it to the pool.
func (o *Origin) roundTrip(ctx context.Context, r *http.Request, out *Outbound, host string) (c *originConn, resp *http.Response, w ctxWatch, err error) {
	replay := replayable(r)
	if c, err = o.pool.acquire(ctx); err != nil {
		return nil, nil, ctxWatch{}, err
	}
	for {
		reused := c != nil
		if !reused {
			if c, err = o.pool.dial(ctx); err != nil {
				o.pool.free()
				return nil, nil, ctxWatch{}, err
			}
		}
		w = c.watch(ctx)
		resp, err = o.exchange(c, r, out, host)
		if err == nil {
			return c, resp, w, nil
		}
		if !w.stop() {
			err = ctx.Err()
		}
		c.close()
		var stale *staleConnError
		if !reused || !replay || !errors.As(err, &stale) {
			o.pool.free()
			return nil, nil, ctxWatch{}, err
		}
		c = nil
	}
}

// watch closes c when ctx is cancelled, which ends any read or write
// blocked on it, until the returned watch is stopped. A context that
// cannot be cancelled is not watched.
func (c *originConn) watch(ctx context.Context) ctxWatch {
	if w, ok := ctx.(cancelWatcher); ok {
		return ctxWatch{w: w, slot: w.WatchCancel(c.abort)}
	}
	if ctx.Done() == nil {
		return ctxWatch{}
	}
	return ctxWatch{after: context.AfterFunc(ctx, c.abort)}
}

// cancelWatcher is a context that runs a function when it is cancelled,
// as context.AfterFunc does but without its allocations per call: the
// contexts of pkg/server/h1's and pkg/server/h2's requests
// (internal/cancelctx) are. The function may run on the goroutine that
// cancels (abort only closes the connection); Unwatch is called at most
// once per watch.
type cancelWatcher interface {
	WatchCancel(f func()) (slot int)
	Unwatch(slot int) bool
}

// ctxWatch is one exchange's watch of its context: through a
// cancelWatcher, or context.AfterFunc's stop, or none.
type ctxWatch struct {
	w     cancelWatcher
	slot  int
	after func() bool
}

// stop ends the watch; it reports false when the context was cancelled
// (the connection was closed). It is called at most once.
func (w ctxWatch) stop() bool {
	switch {
	case w.w != nil:
		return w.w.Unwatch(w.slot)
	case w.after != nil:
		return w.after()
	}
	return true
}

// replayable reports whether r can be sent a second time: it has no body
// and its method is idempotent, or it carries an idempotency key (the
// rule of http.Transport).
func replayable(r *http.Request) bool {
	if bodyLength(r) != 0 {
		return false
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	_, key := r.Header["Idempotency-Key"]
	_, xkey := r.Header["X-Idempotency-Key"]
	return key || xkey
}

// exchange writes r on c and reads the origin's response head. Writing,
// and waiting for the response head, are each bounded by the
// application's response timeout.
func (o *Origin) exchange(c *originConn, r *http.Request, out *Outbound, host string) (*http.Response, error) {
	timeout := o.responseTimeout
	c.conn.SetDeadline(time.Now().Add(timeout))
	bodyLen := bodyLength(r)
	if err := o.writeHead(c.bw, r, out, host, bodyLen); err != nil {
		return nil, err
	}
	if bodyLen == 0 {
		if err := c.bw.Flush(); err != nil {
			return nil, &staleConnError{err}
		}
		return c.readResponse(r)
	}
	err := c.writeBody(r, bodyLen, timeout, func() http.Header { return o.forwardedTrailers(r, out.Filter) })
	if err == nil {
		err = c.bw.Flush()
	}
	if err != nil {
		var cbe *ClientBodyError
		if errors.As(err, &cbe) {
			return nil, err
		}
		// The origin may have answered early (413, 401...) and stopped
		// reading; its answer is worth more than the write error.
		if resp, rerr := c.readResponse(r); rerr == nil {
			resp.Close = true
			return resp, nil
		}
		return nil, err
	}
	c.conn.SetReadDeadline(time.Now().Add(timeout))
	return c.readResponse(r)
}

// readResponse reads the final response head for r, skipping interim 1xx
// responses. A connection that ends before the first byte of the response
// fails with a *staleConnError. The response is the connection's own
// (see responseReader): valid until the connection is released.
func (c *originConn) readResponse(r *http.Request) (*http.Response, error) {
	c.src.limit = maxResponseHeaderBytes
	defer func() { c.src.limit = -1 }()
	if _, err := c.br.Peek(1); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) {
			return nil, &staleConnError{err}
		}
		return nil, err
	}
	for range maxInterimResponses + 1 {
		resp, err := c.rr.read(c.br, r)
		if err != nil {
			return nil, err
		}
		switch {
		case resp.StatusCode >= 200:
			return resp, nil
		case resp.StatusCode == http.StatusSwitchingProtocols:
			return nil, errUnexpectedSwitch
		}
		// 100 Continue, 103 Early Hints: not forwarded.
	}
	return nil, errTooManyInterim
}
