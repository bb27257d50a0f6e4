package h1

import (
	"errors"
	"net/http"
	"strconv"
)

// ProtocolError is a request that the server refused to frame: it was
// answered with Status (4xx or 5xx) and "Connection: close", the handler
// never saw it, and the connection was closed. ServeConn returns it. Err
// says why; it wraps one of the Err* causes below, so callers test the
// cause with errors.Is and the status with errors.As, never by the text.
type ProtocolError struct {
	// Status is the status the request was answered with.
	Status int
	// Err is the cause: one of the Err* values, possibly wrapping the
	// parser's own error.
	Err error
}

// Error returns "h1: <status> <status text>: <cause>".
func (e *ProtocolError) Error() string {
	return "h1: " + strconv.Itoa(e.Status) + " " + http.StatusText(e.Status) + ": " + e.Err.Error()
}

// Unwrap returns the cause.
func (e *ProtocolError) Unwrap() error { return e.Err }

// The causes of a ProtocolError. Those marked "stricter than net/http" are
// the deliberate differences from net/http's server that the differential
// fuzz test FuzzDifferential tolerates.
var (
	// ErrMalformed is a request line or header field that does not parse
	// (400). It wraps net/http's parser error.
	ErrMalformed = errors.New("malformed request")
	// ErrLeadingEmptyLine is an empty line where a request line was due
	// (400). Stricter than net/http, which skips up to four CR/LF bytes
	// after a POST, and than nginx, which skips any number.
	ErrLeadingEmptyLine = errors.New("empty line before the request line")
	// ErrHeaderTooLarge is a request line and header fields over
	// MaxHeaderBytes (431).
	ErrHeaderTooLarge = errors.New("request header fields too large")
	// ErrVersion is a request whose major version is not 1 (505).
	// Stricter than net/http only for the HTTP/2 preface "PRI *
	// HTTP/2.0", which net/http hands to its handler (for h2c): HTTP/2 is
	// negotiated by ALPN here, never over an HTTP/1.x connection.
	ErrVersion = errors.New("unsupported protocol version")
	// ErrMissingHost is an HTTP/1.1 request without a Host header field
	// (400, RFC 9112 §3.2), absolute-form targets included. Stricter than
	// net/http only in name: net/http refuses the same requests.
	ErrMissingHost = errors.New("missing required Host header")
	// ErrHost is a Host header field or target authority with bytes no
	// host can have (400). Stricter than net/http for the authority of an
	// absolute-form target, which takes the place of Host (RFC 9112
	// §3.2.2): net/http checks only the Host field.
	ErrHost = errors.New("malformed Host header")
	// ErrHeaderName is a header field name that is not a token (400).
	ErrHeaderName = errors.New("invalid header name")
	// ErrHeaderValue is a header field value with a control character
	// (400).
	ErrHeaderValue = errors.New("invalid header value")
	// ErrObsFold is a header line that starts with a space or a tab, an
	// obsolete line folding (400, RFC 9112 §5.2). Stricter than net/http,
	// which joins the lines; nginx refuses them too.
	ErrObsFold = errors.New("obsolete line folding in a header field")
	// ErrMethod is a method with a byte other than A-Z, "-" and "_" (400).
	// Methods are case-sensitive (RFC 9110 §9.1): "get" is not GET, and
	// nginx (ngx_http_parse_request_line) refuses lower-case methods the
	// same way. Stricter than net/http, which takes any token.
	ErrMethod = errors.New("invalid method")
	// ErrAsteriskForm is the target "*" with a method other than OPTIONS
	// (400, RFC 9112 §3.2.4). Stricter than net/http, which serves it.
	ErrAsteriskForm = errors.New("asterisk-form target with a method other than OPTIONS")
	// ErrTransferEncoding10 is an HTTP/1.0 request with a
	// Transfer-Encoding header field (400, RFC 9112 §6.1: HTTP/1.0 has no
	// transfer codings, so the message framing is faulty). Stricter than
	// net/http, which ignores the field and reads the chunked body as the
	// next request.
	ErrTransferEncoding10 = errors.New("Transfer-Encoding in an HTTP/1.0 request")
	// ErrUnsupportedTransferEncoding is a Transfer-Encoding other than a
	// single "chunked" (501).
	ErrUnsupportedTransferEncoding = errors.New("unsupported transfer encoding")
	// ErrExpectation is an Expect header field whose members are not
	// exactly the one token 100-continue (417, RFC 9110 §10.1.1). Stricter
	// than net/http, which finds the token inside a longer value
	// ("100-continue 00") and serves the request.
	ErrExpectation = errors.New("unsupported expectation")
)

func protocolError(status int, err error) *ProtocolError {
	return &ProtocolError{Status: status, Err: err}
}
