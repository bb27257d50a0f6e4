// Package proxy is the edge's origin client: per application, a pool of
// persistent HTTP/1.1 connections to the origin (LIFO, with an idle
// timeout and a non-blocking liveness probe before reuse), the exchange
// that runs on the caller's goroutine (Origin.RoundTrip, Exchange.Relay,
// Exchange.Release), and the rewriting of the request and the response the
// way httputil.ReverseProxy with a Rewrite hook would: hop-by-hop headers
// removed, X-Forwarded-* set by the edge, framing checked.
//
// What to rewrite (Host, the rewritten path, the headers filtered and
// added) comes from the caller in an Outbound: the package knows nothing of
// rules, runtimes or servers.
//
// Everything that grows with traffic is bounded: the connections open to
// the origin (Config.MaxConns, with a FIFO wait queue of Config.MaxQueue
// requests for at most Config.QueueTimeout: ErrQueueFull,
// ErrQueueTimeout), and the request body (Config.MaxBodySize:
// ErrBodyTooLarge), which can be read ahead into pooled memory
// (Config.BufferSize) before a connection is taken. Calls take a
// context.Context, and the exchange honours it at every step: the wait in
// the queue, dialing and the TLS handshake, writing the request, reading
// the response and relaying its body. A cancelled context closes the
// origin connection, which is never returned to the pool.
package proxy
