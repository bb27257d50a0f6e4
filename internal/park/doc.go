// Package park waits for many idle connections with no goroutine each.
//
// A Go server's idle keep-alive connection is a goroutine blocked in a
// read: at least a 4 KB stack and the goroutine's own bookkeeping, for as
// long as the client keeps the connection open. nginx's idle connection
// is an entry in its event loop's epoll set. A Parker does the same for
// Go: Park registers the connection's socket in one epoll set, one-shot,
// and the connection's goroutine returns; when the socket turns readable
// (a request's first byte, the client's close, a reset), Park's wake
// function runs on a new goroutine, which carries on serving. Its stack
// starts small again.
//
// The epoll set is itself registered in Go's network poller, so no thread
// is blocked waiting for it: one goroutine per Parker reads its events
// when Go's poller reports it readable.
//
// A parked connection can also end without the client: its deadline
// passes (Park's deadline, a timer), or its owner cancels the wait
// (Cancel, for a server shutting down). Exactly one of the three wakes
// it, once. Closing a parked connection does not wake it (the kernel
// drops a closed socket from an epoll set silently): cancel the park as
// well. A connection embeds its Spot, and Cancel is safe at any moment
// (before a park, during one, after the wake), so the servers need no
// lock of their own around parking.
//
// Parkers exist on Linux only; elsewhere New reports errors.ErrUnsupported
// and the servers wait in a goroutine, as they did.
package park
