// Package h1 serves HTTP/1.x on connections whose TLS handshake is done:
// one goroutine per connection that reads a request, runs the handler and
// writes the response, with no per-request goroutine or context: requests
// share their connection's context, cancelled when the client goes away.
// A handler still running 5 to 10 ms after its request was read has the
// connection watched by one read of one byte, as net/http's background
// read, started by a sweeper that runs only while requests are in flight
// (watch.go); a faster one costs two atomic operations and an append.
// Between requests a connection holds no read or write buffer: it gives
// them back to the pools and waits for the next request's first byte,
// after 250 ms on its socket alone, on a small stack (waitIdle) — or,
// served by ServeConnThen with a Parker, with no goroutine at all: it
// parks in the Parker's epoll set, and a new goroutine serves its next
// request (internal/park).
//
// Requests are parsed here (parse.go) exactly as net/http's own parser,
// http.ReadRequest, parses them, with the checks net/http's server adds on
// top (Host, header names and values, protocol version, header size);
// responses are framed here (Content-Length, chunked or close-delimited).
// The edge uses it for every connection that did not negotiate HTTP/2;
// package h2 serves HTTP/2.
//
// The parser converts the request line and header fields to one string
// once they have all arrived (from the connection's read buffer, or
// gathered line by line past it, within MaxHeaderBytes) and its fields
// are substrings of it (internal/httphead, net/textproto's rules byte for
// byte). A common origin-form target ("/path?query") becomes the URL
// url.ParseRequestURI would make without calling it; other targets go
// through url.ParseRequestURI. The Request, its URL, its Header map and
// its body reader are reused from one request to the next (a pool holds
// them while the connection waits), so a common request costs two
// allocations (the head's text and its values' slices) where
// http.ReadRequest and Request.WithContext make about twenty. A handler
// may keep the strings and the header's value slices, never the request
// nor its Header map past ServeHTTP (net/http's rules). The request
// carries the connection's context from the start: undeclared trailers of
// a chunked body reach the handler's r.Trailer, as with net/http's server.
// FuzzReadRequest compares the parser with http.ReadRequest field by
// field, through the body, its trailers and what is left of the stream;
// there is no difference but the error texts, and that a malformed header
// field fails once the whole head has arrived (a malformed request line
// fails once it is complete, as with net/http).
//
// Framing follows RFC 9112 where net/http's parser is lenient or silent. A
// scanner reads the raw request line and header bytes beside the parser
// (no copy, no allocation) for what the parser drops, and the server then:
//   - reads a request with both Content-Length and Transfer-Encoding as
//     chunked and closes the connection after its response (§6.1);
//   - refuses with 400 an HTTP/1.0 request with Transfer-Encoding (§6.1),
//     an HTTP/1.1 request without a Host field, absolute-form included
//     (§3.2), and a folded header line (obs-fold, §5.2);
//   - refuses with 400 a method of anything but A-Z, "-" and "_", as nginx
//     does: methods are case-sensitive, and "get" is not GET;
//   - accepts the asterisk form only for OPTIONS, and hands "OPTIONS *" to
//     the handler with r.RequestURI and r.URL.Path both "*".
//
// Every refusal is answered with its status and "Connection: close", never
// reaches the handler, and is returned by ServeConn as a *ProtocolError
// whose cause is one of the Err* values. Where this is stricter than
// net/http's server, the cause's doc says so; FuzzDifferential checks that
// these are the only differences, and TestAgainstNginx compares the same
// requests with nginx.
package h1
