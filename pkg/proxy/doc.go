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
// rules, runtimes or servers. Calls take a context.Context, which bounds
// dialing and the TLS handshake to the origin.
package proxy
