// Package h2 serves HTTP/2 (RFC 9113) on connections whose TLS handshake
// is done and negotiated "h2". Frames are read and written with
// golang.org/x/net/http2's Framer and HPACK codec; the server itself —
// streams, flow control, limits, timeouts — is this package's, built for
// the edge's traffic: many short requests, several in flight on each
// connection.
//
// # Design
//
// One goroutine per connection (ServeConn's) reads frames and handles the
// control frames itself (SETTINGS, PING, WINDOW_UPDATE, RST_STREAM,
// PRIORITY, GOAWAY): there is no serve loop fed by channels. Served by
// ServeConnThen with a Parker, a connection with no stream for 250 ms has
// no goroutine at all: it parks in the Parker's epoll set, and a new
// reading goroutine carries on when its socket turns readable
// (internal/park). A complete
// request header block becomes a stream whose handler runs on a worker
// taken from a pool shared by the Server: a worker that finished a stream
// waits for the next one with the stack its handlers grew, so a stream
// does not start on a new goroutine's small stack and copy it as it grows;
// a worker idle for 10 s exits.
//
// Handlers write straight into the connection's write buffer under a
// mutex. A response is held in a pooled 8 KiB buffer until it is full,
// flushed or the handler returns, so a small response leaves as HEADERS
// (with a Content-Length) and one DATA frame with END_STREAM, in one hold
// of the lock. Flushes are coalesced: a writer flushes only when no other
// writer is queued for the lock behind it (the last of a burst flushes
// for all); a handler ending its stream while other handlers of the
// connection run yields the processor once before it flushes, so that
// those finishing meanwhile add their frames to the same flush; and the
// reading goroutine flushes its own control frames when no whole frame is
// left in its buffer. The responses of several streams thus share a TLS
// record and a syscall (BenchmarkStreams: about a fifth less time per
// request with the yield on one CPU). Everything a handler wrote is
// on the wire, or its stream reset, when the handler's ServeHTTP has
// returned to its worker; a write never waits without bound (WriteTimeout).
//
// What a stream uses and no handler can keep is pooled: response header
// maps (given back when the handler returns, as net/http's contract
// allows), response buffers, the first 16 KiB of request-body buffers, the
// connection's write buffer (held only while writing). The stream and its
// http.Request are not: a handler may keep the request.
//
// Each stream has its http.Request (ProtoMajor 2, TLS from the
// connection, Host from :authority, RemoteAddr, RequestURI, Trailer) and a
// context derived from ConnContext's (an internal/cancelctx.Context, made
// without allocating), cancelled when the client resets the stream, when
// the connection closes, when the server resets the stream (a timeout),
// by Close and when ConnContext's context is cancelled. Its ResponseWriter is an http.Flusher
// (and FlushError works with http.ResponseController). Response trailers
// follow net/http's rules: names declared in the Trailer header, with
// their values set by the time the handler returns, and names with
// http.TrailerPrefix.
//
// # Limits and defences
//
// Each has a test over TLS on 127.0.0.1 with a raw x/net/http2 Framer
// client that fails without it (hardening_test.go):
//
//   - Flow control both ways (TestSendFlowControl, TestWindowOverflow,
//     TestReceiveFlowControl): responses are sent within the client's
//     stream and connection windows; a window taken past 2^31-1 is a
//     FLOW_CONTROL_ERROR; a client may send 1 MiB ahead per stream and per
//     connection (what a connection buffers is bounded by 1 MiB), more is
//     a FLOW_CONTROL_ERROR; WINDOW_UPDATE is sent as handlers read.
//   - Timeouts (TestTimeouts): a connection whose first request is not
//     complete ReadHeaderTimeout after ServeConn is closed; one with no
//     open stream for IdleTimeout is closed with GOAWAY NO_ERROR (a header
//     block trickled in CONTINUATION frames opens no stream); a handler
//     waiting longer than BodyReadTimeout for body bytes, or longer than
//     WriteTimeout for window (a client keeping its window at zero), has
//     its stream reset with INTERNAL_ERROR and its context cancelled; a
//     connection on which nothing can be written for WriteTimeout is
//     closed.
//   - MaxConcurrentStreams (TestMaxConcurrentStreams): advertised in
//     SETTINGS; a stream over it is refused with REFUSED_STREAM. It also
//     bounds the handlers running for a connection: a stream beyond waits
//     in a queue, and a client whose streams queue four times as deep has
//     opened and reset streams faster than they finish (rapid reset,
//     CVE-2023-44487): its connection is closed with ENHANCE_YOUR_CALM
//     (TestRapidReset), as x/net/http2 bounds it.
//   - Header blocks (TestHeaderListLimits): a header list over
//     MaxHeaderBytes (plus 32 bytes per field for 10 fields, advertised as
//     SETTINGS_MAX_HEADER_LIST_SIZE) is answered 431 without reaching the
//     handler; a field longer than that is refused by the HPACK decoder
//     (COMPRESSION_ERROR); a non-empty CONTINUATION frame after the list
//     is over,
//     or a fragment more than twice what is left of it, closes the
//     connection without being decoded (CVE-2024-27316). The client's
//     HPACK table is 4,096 bytes; responses use none (static table and
//     literals, as nginx's: TestResponsesNotIndexed).
//   - Floods (TestFloods): PING, SETTINGS, PRIORITY, empty DATA frames (padded or not)
//     without END_STREAM and RST_STREAMs of streams whose handler never
//     ran serve no request; a connection that sends more than 10,000 of
//     them (plus 10 for each request it made) is closed with
//     ENHANCE_YOUR_CALM.
//   - Validation as RFC 9113 §8 and x/net/http2's server (TestValidation,
//     TestFirstFrameSettings): pseudo-header fields, field names and
//     values, connection-specific fields and TE (answered 400), Host
//     against :authority, Content-Length against the DATA received, frames
//     on idle, half-closed and closed streams and on stream 0, stream ID
//     order, PUSH_PROMISE from a client, a first frame other than
//     SETTINGS; PRIORITY frames are accepted and ignored.
//
// CountError and CountTimeout count each of these events; ErrorLog gets
// handler panics (a panicking handler's stream is reset with
// INTERNAL_ERROR). A response with "Connection: close" (which is not
// sent: HTTP/2 has no such field) ends its connection gracefully, as with
// x/net/http2: GOAWAY once the response is out.
//
// # Differences from x/net/http2's server
//
// FuzzDifferential feeds the same client byte streams to this server and
// to x/net/http2's, behind the same handler, and compares what reached
// the handler, each stream's status or reset, and the connection's
// GOAWAY. These differences are deliberate; the fuzz target allows the
// first three, and the others are outside what it generates:
//
//   - A stream over MaxConcurrentStreams is refused with REFUSED_STREAM
//     (which tells the client it may retry it); x/net answers
//     PROTOCOL_ERROR once its SETTINGS are acknowledged.
//   - After a connection error, the responses and resets already written
//     have left; x/net drops those it had queued.
//   - HEADERS on a stream the server has just reset (one of its last 8
//     resets) are ignored, as RFC 9113 §5.1 asks; x/net ignores them
//     until its RST_STREAM is written, then closes the connection with
//     PROTOCOL_ERROR.
//   - The flood bound above; x/net bounds control frames queued for a
//     client that does not read them.
//   - SETTINGS_MAX_FRAME_SIZE is left at 16,384 (x/net advertises 1 MiB):
//     a larger client frame is a FRAME_SIZE_ERROR.
//   - No Content-Type is sniffed for a response without one (as package
//     h1: the edge relays the origin's).
//   - Response header fields changed after WriteHeader but before the
//     first Write or Flush are sent (x/net sends the fields as they were
//     at WriteHeader).
//   - The timeouts are the edge's (above), not x/net's ReadTimeout and
//     WriteTimeout for a whole stream; a connection closed by the header
//     timeout gets no GOAWAY.
//   - http.ResponseController's SetReadDeadline and SetWriteDeadline are
//     not supported (they return http.ErrNotSupported): the Server's
//     timeouts apply.
//   - Responses are written in the order handlers write them; priority
//     signals (PRIORITY frames, PRIORITY_UPDATE, the priority header) are
//     ignored. Extended CONNECT is not offered; server push is not used.
//
// BenchmarkStreams and BenchmarkStreamsXNet measure the same 8-streams
// load against both servers.
package h2
