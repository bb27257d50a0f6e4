package h1

import (
	"context"
	"sync"
)

// connContext is a connection's context, the context of each of its
// requests. Besides what context.WithCancel gives, it runs functions
// registered with WatchCancel when it is cancelled: the origin client
// (pkg/proxy) registers one per origin exchange to close the origin
// connection when the client goes away. context.AfterFunc does the same
// with two allocations and an insertion into the parent's set of children
// per call; a connection serves one request at a time, so a couple of
// slots made once per connection are enough, with no allocation per
// request.
type connContext struct {
	context.Context
	cancelCtx context.CancelFunc

	mu    sync.Mutex
	done  bool
	hooks [2]func()
	// stops[i] unregisters hooks[i]; made once, with the connection.
	stops [2]func() bool
}

func newConnContext(parent context.Context) *connContext {
	c := &connContext{}
	c.Context, c.cancelCtx = context.WithCancel(parent)
	for i := range c.stops {
		c.stops[i] = func() bool { return c.unwatch(i) }
	}
	return c
}

// cancel cancels the context, then runs the registered functions, each
// once, on the caller's goroutine.
func (c *connContext) cancel() {
	c.cancelCtx()
	c.mu.Lock()
	if c.done {
		c.mu.Unlock()
		return
	}
	c.done = true
	hooks := c.hooks
	c.hooks = [2]func(){}
	c.mu.Unlock()
	for _, f := range hooks {
		if f != nil {
			f()
		}
	}
}

// WatchCancel arranges for f to run when the context is cancelled (at
// once if it already is), unless stop is called first. stop reports
// whether it stopped f from running, as the stop function of
// context.AfterFunc; it must be called at most once. Unlike
// context.AfterFunc, f runs on the goroutine that cancels, so it must not
// block.
func (c *connContext) WatchCancel(f func()) (stop func() bool) {
	c.mu.Lock()
	if c.done {
		c.mu.Unlock()
		f()
		return func() bool { return false }
	}
	for i, h := range c.hooks {
		if h == nil {
			c.hooks[i] = f
			c.mu.Unlock()
			return c.stops[i]
		}
	}
	c.mu.Unlock()
	// More watches at once than slots: the general way.
	return context.AfterFunc(c.Context, f)
}

func (c *connContext) unwatch(i int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.hooks[i] == nil {
		return false
	}
	c.hooks[i] = nil
	return true
}
