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
//
// Origin responses are parsed here (parse.go), not by http.ReadResponse:
// the head is converted to one string when it has arrived whole (read
// from the connection's buffer, or gathered line by line when it is
// longer, within the 1 MiB bound of a response's header section) and its
// fields parsed by internal/httphead into substrings of it, in a
// Response, a Header map and a body reader that each origin connection
// reuses for its next response. A common response head thus costs two
// allocations (its text and its values' slices) where http.ReadResponse
// makes a dozen. The status line, the header fields, the framing of the
// body (1xx, 204, 304 and responses to HEAD without a body; chunked with
// trailers; Content-Length, equal duplicates merged and differing ones
// refused; until the connection closes otherwise), Close
// (Connection: close, HTTP/1.0 without keep-alive, a body delimited by the
// close) and the body's reads are those of http.ReadResponse for a
// response to the request's method. FuzzReadResponse compares the two on
// generated and raw responses, field by field and through the body, its
// trailers and what is left on the connection; the only differences are
// deliberate and allowed nowhere else:
//   - the Response, its Header map and its Body are valid until the
//     exchange is released (Exchange.Response); the header's strings and
//     value slices stay valid (Relay hands them to the client's header);
//   - a malformed status line fails once the line is complete, as with
//     net/http, but a malformed header field fails once the whole head has
//     arrived (net/http fails at that field's line): the response fails
//     either way, at most the response timeout later;
//   - the errors' texts are not net/http's.
package proxy
