// Package h1 serves HTTP/1.x on connections whose TLS handshake is done:
// one goroutine per connection that reads a request, runs the handler and
// writes the response, with no per-request goroutine, context or
// background read.
//
// Requests are parsed by net/http's own parser (http.ReadRequest), with the
// checks net/http's server adds on top (Host, header names and values,
// protocol version, header size); responses are framed here (Content-Length,
// chunked or close-delimited). The edge uses it for every connection that
// did not negotiate HTTP/2; net/http keeps serving HTTP/2.
package h1
