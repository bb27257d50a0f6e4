package httphead

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/textproto"
	"strconv"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// FixPragmaCacheControl adds "Cache-Control: no-cache" to a message
// whose first Pragma is "no-cache" and that has no Cache-Control, as
// net/http does (RFC 7234 §5.4).
func FixPragmaCacheControl(h http.Header) {
	if hp, ok := h["Pragma"]; ok && len(hp) > 0 && hp[0] == "no-cache" {
		if _, ok := h["Cache-Control"]; !ok {
			h["Cache-Control"] = []string{"no-cache"}
		}
	}
}

// BodyAllowedForStatus reports whether a response with this status can
// have a body (RFC 9112 §6.3).
func BodyAllowedForStatus(status int) bool {
	return !(status >= 100 && status <= 199 || status == 204 || status == 304)
}

// ShouldClose reports whether the connection closes after this message,
// as net/http decides it; with removeCloseHeader, a "close" Connection
// field of an HTTP/1.1 message is removed.
func ShouldClose(major, minor int, h http.Header, removeCloseHeader bool) bool {
	if major < 1 {
		return true
	}
	conv := h["Connection"]
	hasClose := httpguts.HeaderValuesContainsToken(conv, "close")
	if major == 1 && minor == 0 {
		return hasClose || !httpguts.HeaderValuesContainsToken(conv, "keep-alive")
	}
	if hasClose && removeCloseHeader {
		delete(h, "Connection")
	}
	return hasClose
}

// TransferEncoding removes the Transfer-Encoding field and reports
// whether the body is chunked: net/http (like nginx) accepts one field,
// "chunked" in any ASCII case, and ignores the field in HTTP/1.0.
func TransferEncoding(h http.Header, major, minor int) (bool, error) {
	raw, ok := h["Transfer-Encoding"]
	if !ok {
		return false, nil
	}
	delete(h, "Transfer-Encoding")
	if major < 1 || major == 1 && minor < 1 {
		return false, nil
	}
	if len(raw) != 1 {
		return false, fmt.Errorf("too many transfer encodings: %q", raw)
	}
	if !asciiEqualFold(raw[0], "chunked") {
		return false, fmt.Errorf("unsupported transfer encoding: %q", raw[0])
	}
	return true, nil
}

func asciiEqualFold(s, t string) bool {
	if len(s) != len(t) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if lowerASCII(s[i]) != lowerASCII(t[i]) {
			return false
		}
	}
	return true
}

func lowerASCII(b byte) byte {
	if 'A' <= b && b <= 'Z' {
		return b + 'a' - 'A'
	}
	return b
}

// FixLength returns the body's length from the header, as net/http's
// fixLength does: Content-Length fields that differ, or one that is not a
// number, are errors (equal duplicates are merged into one); noBody (a
// response to HEAD, a 1xx, 204 or 304 response) means 0; chunked drops
// Content-Length and means -1; a message with neither is 0 for a request
// and -1 (until the connection closes) for a response.
func FixLength(h http.Header, noBody, chunked, request bool) (int64, error) {
	lens := h["Content-Length"]
	if len(lens) > 1 {
		first := textproto.TrimString(lens[0])
		for _, l := range lens[1:] {
			if textproto.TrimString(l) != first {
				return 0, fmt.Errorf("http: message cannot contain multiple Content-Length headers; got %q", lens)
			}
		}
		lens = []string{first}
		h["Content-Length"] = lens
	}
	var n int64
	if len(lens) > 0 {
		var err error
		if n, err = ParseContentLength(lens); err != nil {
			return -1, err
		}
	}
	switch {
	case noBody:
		return 0, nil
	case chunked:
		delete(h, "Content-Length")
		return -1, nil
	case len(lens) > 0:
		return n, nil
	}
	delete(h, "Content-Length")
	if request {
		return 0, nil
	}
	return -1, nil
}

// ParseContentLength parses the first Content-Length value, trimmed; -1
// when there is none.
func ParseContentLength(lens []string) (int64, error) {
	if len(lens) == 0 {
		return -1, nil
	}
	cl := textproto.TrimString(lens[0])
	if cl == "" {
		return 0, errors.New("invalid empty Content-Length")
	}
	n, err := strconv.ParseUint(cl, 10, 63)
	if err != nil {
		return 0, fmt.Errorf("bad Content-Length %q", cl)
	}
	return int64(n), nil
}

// FixTrailer returns the trailers a chunked message announces (keys with
// nil values) and removes its Trailer field; Transfer-Encoding, Trailer
// and Content-Length cannot be trailers. A message that is not chunked
// keeps its Trailer field and has no trailers.
func FixTrailer(h http.Header, chunked bool) (http.Header, error) {
	vv, ok := h["Trailer"]
	if !ok || !chunked {
		return nil, nil
	}
	delete(h, "Trailer")
	var trailer http.Header
	for _, v := range vv {
		for _, key := range strings.Split(v, ",") {
			key = textproto.TrimString(key)
			if key == "" {
				continue
			}
			key = http.CanonicalHeaderKey(key)
			switch key {
			case "Transfer-Encoding", "Trailer", "Content-Length":
				return nil, fmt.Errorf("bad trailer key %q", key)
			}
			if trailer == nil {
				trailer = make(http.Header)
			}
			trailer[key] = nil
		}
	}
	return trailer, nil
}

// The kinds of Body.
const (
	BodyLength  = iota // ContentLength bytes
	BodyChunked        // chunked, then trailers
	BodyEOF            // until the connection ends
)

// Body is the body of a message read from a connection, as
// net/http's: a length that ends early is io.ErrUnexpectedEOF, the last
// bytes of a length come with io.EOF, a chunked body's trailers are read
// at its end into *trailer, and Close reads what is left of a body that
// does not end with the connection. Each connection reuses its own.
type Body struct {
	br      *bufio.Reader
	kind    int
	n       int64 // bytes left of a BodyLength body
	chunks  io.Reader
	trailer *http.Header
	closing bool
	sawEOF  bool
	closed  bool
}

// Reset makes b the body of the next message on br: kind is BodyLength
// (n bytes), BodyChunked (the trailers go to *trailer) or BodyEOF;
// closing says the connection closes after the message.
func (b *Body) Reset(br *bufio.Reader, kind int, n int64, closing bool, trailer *http.Header) {
	*b = Body{br: br, kind: kind, n: n, closing: closing, trailer: trailer}
	if kind == BodyChunked {
		b.chunks = httputil.NewChunkedReader(br)
	}
}

// Read reads the body; after Close it fails with
// http.ErrBodyReadAfterClose.
func (b *Body) Read(p []byte) (int, error) {
	if b.closed {
		return 0, http.ErrBodyReadAfterClose
	}
	return b.read(p)
}

func (b *Body) read(p []byte) (n int, err error) {
	if b.sawEOF {
		return 0, io.EOF
	}
	switch b.kind {
	case BodyLength:
		if b.n <= 0 {
			b.sawEOF = true
			return 0, io.EOF
		}
		if int64(len(p)) > b.n {
			p = p[:b.n]
		}
		n, err = b.br.Read(p)
		b.n -= int64(n)
		if err == io.EOF {
			b.sawEOF = true
			if b.n > 0 {
				err = io.ErrUnexpectedEOF
			}
		} else if err == nil && n > 0 && b.n == 0 {
			b.sawEOF = true
			err = io.EOF
		}
	case BodyChunked:
		n, err = b.chunks.Read(p)
		if err == io.EOF {
			b.sawEOF = true
			if terr := b.readTrailer(); terr != nil {
				// Nothing more is read from this body, nor from its
				// connection.
				err = terr
				b.sawEOF, b.closed = false, true
			}
			b.trailer = nil
		}
	default:
		n, err = b.br.Read(p)
		if err == io.EOF {
			b.sawEOF = true
		}
	}
	return n, err
}

var errTrailerEOF = errors.New("http: unexpected EOF reading trailer")

// readTrailer reads the trailer section after the last chunk, as
// net/http does: bounded by the connection's buffer (the section must end
// within it), merged into the announced trailers.
func (b *Body) readTrailer() error {
	buf, err := b.br.Peek(2)
	if string(buf) == "\r\n" {
		b.br.Discard(2)
		return nil
	}
	if len(buf) < 2 {
		return errTrailerEOF
	}
	if err != nil {
		return err
	}
	if !seeUpcomingDoubleCRLF(b.br) {
		return errors.New("http: suspiciously long trailer after chunked body")
	}
	hdr, err := textproto.NewReader(b.br).ReadMIMEHeader()
	if err != nil {
		if err == io.EOF {
			return errTrailerEOF
		}
		return err
	}
	if *b.trailer == nil {
		*b.trailer = http.Header(hdr)
		return nil
	}
	for k, vv := range hdr {
		(*b.trailer)[k] = vv
	}
	return nil
}

func seeUpcomingDoubleCRLF(r *bufio.Reader) bool {
	for peek := 4; ; peek++ {
		buf, err := r.Peek(peek)
		if bytes.HasSuffix(buf, []byte("\r\n\r\n")) {
			return true
		}
		if err != nil {
			return false
		}
	}
}

// Close ends the body; as net/http's, it reads what is left of a body
// whose connection stays open (nothing when the body was read to its
// end).
func (b *Body) Close() error {
	if b.closed {
		return nil
	}
	var err error
	if !b.sawEOF && !(b.kind != BodyChunked && b.closing) {
		_, err = io.Copy(io.Discard, bodyReader{b})
	}
	b.closed = true
	return err
}

// bodyReader reads a Body that Close is draining.
type bodyReader struct{ b *Body }

func (r bodyReader) Read(p []byte) (int, error) {
	if r.b.closed {
		return 0, http.ErrBodyReadAfterClose
	}
	return r.b.read(p)
}
