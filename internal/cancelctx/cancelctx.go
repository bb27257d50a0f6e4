// Package cancelctx is the context of a server's requests: cancelled when
// the client goes away, it runs the functions the origin client registers
// (to close its origin connection) on the goroutine that cancels, and it
// costs no allocation per request.
//
// context.WithCancel and context.AfterFunc do the same with three
// allocations, and an insertion into (and a removal from) the parent's
// set of children, per request. pkg/server/h1 makes one Context per
// connection (a connection serves one request at a time); pkg/server/h2
// embeds one in each stream.
package cancelctx

import (
	"context"
	"sync"
	"time"
)

// Context is a cancellable context.Context. Its values and deadline are
// its parent's; it is done when Cancel is called or (made with Init) when
// the parent is.
// The zero value is not usable: call Init.
//
// context.Cause of a cancelled Context is its Err, or the cause a
// cancelled parent was given (context.WithCancelCause).
type Context struct {
	parent context.Context

	mu   sync.Mutex
	done chan struct{} // made on the first Done, or closedChan
	err  error
	// hooks run at Cancel.
	hooks [2]func()
	// more holds the functions registered beyond hooks, by slot.
	more map[int]func()
	next int
	// stopParent ends the watch of a cancellable parent.
	stopParent func() bool
}

// closedChan is the Done channel of a Context cancelled before anybody
// asked for one.
var closedChan = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

// Init makes c a fresh, not cancelled context under parent, cancelled
// when parent is. A Context can be initialised again once it is cancelled
// and no goroutine uses it.
func (c *Context) Init(parent context.Context) {
	c.InitValues(parent)
	if parent.Done() != nil {
		c.stopParent = context.AfterFunc(parent, c.Cancel)
	}
}

// InitValues is Init for a context whose owner cancels it when parent
// ends: c has parent's values and deadline but does not watch parent,
// which costs nothing per context. pkg/server/h2 cancels its streams'
// contexts when the connection's ends.
func (c *Context) InitValues(parent context.Context) {
	c.parent = parent
	c.done, c.err, c.hooks, c.more, c.next, c.stopParent = nil, nil, [2]func(){}, nil, 0, nil
}

// Deadline returns the parent's deadline.
func (c *Context) Deadline() (time.Time, bool) { return c.parent.Deadline() }

// Value returns the parent's value for key.
func (c *Context) Value(key any) any { return c.parent.Value(key) }

// Done returns a channel closed when c is cancelled.
func (c *Context) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done == nil {
		if c.err != nil {
			c.done = closedChan
		} else {
			c.done = make(chan struct{})
		}
	}
	return c.done
}

// Err returns context.Canceled once c is cancelled, else nil.
func (c *Context) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Cancel cancels c, then runs the registered functions, each once, on the
// caller's goroutine. Later calls do nothing.
func (c *Context) Cancel() {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = context.Canceled
	if c.done != nil {
		close(c.done)
	}
	hooks, more, stopParent := c.hooks, c.more, c.stopParent
	c.hooks, c.more, c.stopParent = [2]func(){}, nil, nil
	c.mu.Unlock()
	if stopParent != nil {
		stopParent()
	}
	for _, f := range hooks {
		if f != nil {
			f()
		}
	}
	for _, f := range more {
		f()
	}
}

// WatchCancel arranges for f to run when c is cancelled (at once if it
// already is), unless Unwatch(slot) is called first. Unlike
// context.AfterFunc, f runs on the goroutine that cancels, or on the
// caller's when c already is, so it must not block and the caller must
// hold no lock f takes. The first two watches at a time take no
// allocation.
func (c *Context) WatchCancel(f func()) (slot int) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		f()
		return -1
	}
	slot = c.register(f)
	c.mu.Unlock()
	return slot
}

// register adds f to the functions Cancel runs and returns its slot; c.mu
// is held and c is not cancelled.
func (c *Context) register(f func()) (slot int) {
	for i, h := range c.hooks {
		if h == nil {
			c.hooks[i] = f
			return i
		}
	}
	if c.more == nil {
		c.more = make(map[int]func())
	}
	c.next++
	slot = len(c.hooks) + c.next
	c.more[slot] = f
	return slot
}

// Unwatch unregisters the function WatchCancel registered in slot and
// reports whether it stopped it from running, as the stop function of
// context.AfterFunc. It must be called at most once per watch, before c
// is initialised again.
func (c *Context) Unwatch(slot int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case slot < 0:
		return false
	case slot < len(c.hooks):
		if c.hooks[slot] == nil {
			return false
		}
		c.hooks[slot] = nil
		return true
	}
	if _, ok := c.more[slot]; !ok {
		return false
	}
	delete(c.more, slot)
	return true
}

// AfterFunc is WatchCancel for the context package: a context derived
// from c (context.WithCancel(c), context.AfterFunc(c, …)) registers
// through it instead of starting a goroutine to wait on Done. The context
// package calls it holding the derived context's lock, so when c is
// already cancelled f runs on a goroutine of its own, as with
// context.AfterFunc; otherwise Cancel runs it.
func (c *Context) AfterFunc(f func()) (stop func() bool) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		go f()
		return func() bool { return false }
	}
	slot := c.register(f)
	c.mu.Unlock()
	return func() bool { return c.Unwatch(slot) }
}

// String names the context as the context package's do.
func (c *Context) String() string { return "cancelctx.Context" }
