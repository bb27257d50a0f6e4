package proxy

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

	"github.com/edgectl/edgectl/internal/httphead"
	"golang.org/x/net/http/httpguts"
)

// responseReader parses the origin's response heads on one connection,
// as http.ReadResponse does (see the package documentation for the
// differences), into memory the connection reuses: the Response, its
// Header map (cleared for the next response) and its body reader. The
// field strings are substrings of one string conversion of the head, and
// the values' slices are new for every response: the caller may hand them
// on (Relay puts them in the client's header), never the map.
type responseReader struct {
	resp   http.Response
	header http.Header
	te     [1]string
	body   messageBody
}

// errMalformedResponse is the cause of a response head that is not one.
var errMalformedResponse = errors.New("malformed HTTP response")

// read reads the next response head for req (nil: a GET) from br and
// frames its body. The Response, its Header and Body stay valid until
// the next call.
func (p *responseReader) read(br *bufio.Reader, req *http.Request) (*http.Response, error) {
	head, err := httphead.Read(br, checkStatusLine)
	if err != nil {
		return nil, err
	}
	line, fields := httphead.Line(head)
	if p.header == nil {
		p.header = make(http.Header)
	}
	clear(p.header)
	resp := &p.resp
	*resp = http.Response{Request: req, Header: p.header}
	if err := parseStatusLine(resp, line); err != nil {
		return nil, err
	}
	if err := httphead.ParseFields(resp.Header, fields); err != nil {
		return nil, err
	}
	fixPragmaCacheControl(resp.Header)
	if err := p.frame(br, resp); err != nil {
		return nil, err
	}
	return resp, nil
}

// checkStatusLine fails on a status line http.ReadResponse refuses.
func checkStatusLine(line []byte) error {
	return parseStatusLine(new(http.Response), string(line))
}

// parseStatusLine reads a status line as http.ReadResponse does.
func parseStatusLine(resp *http.Response, line string) error {
	proto, status, ok := strings.Cut(line, " ")
	if !ok {
		return fmt.Errorf("%w: %q", errMalformedResponse, line)
	}
	resp.Proto = proto
	resp.Status = strings.TrimLeft(status, " ")
	code, _, _ := strings.Cut(resp.Status, " ")
	if len(code) != 3 {
		return fmt.Errorf("malformed HTTP status code %q", code)
	}
	n, err := strconv.Atoi(code)
	if err != nil || n < 0 {
		return fmt.Errorf("malformed HTTP status code %q", code)
	}
	resp.StatusCode = n
	if resp.ProtoMajor, resp.ProtoMinor, ok = http.ParseHTTPVersion(proto); !ok {
		return fmt.Errorf("malformed HTTP version %q", proto)
	}
	return nil
}

// fixPragmaCacheControl adds "Cache-Control: no-cache" to a message
// whose first Pragma is "no-cache" and that has no Cache-Control, as
// net/http does (RFC 7234 §5.4).
func fixPragmaCacheControl(h http.Header) {
	if hp, ok := h["Pragma"]; ok && len(hp) > 0 && hp[0] == "no-cache" {
		if _, ok := h["Cache-Control"]; !ok {
			h["Cache-Control"] = []string{"no-cache"}
		}
	}
}

// frame sets the response's framing (ContentLength, TransferEncoding,
// Close, Trailer) and its Body, as net/http's readTransfer does for a
// response to resp.Request's method.
func (p *responseReader) frame(br *bufio.Reader, resp *http.Response) error {
	h := resp.Header
	method := http.MethodGet
	if resp.Request != nil {
		method = resp.Request.Method
	}
	major, minor := resp.ProtoMajor, resp.ProtoMinor
	closing := shouldClose(major, minor, h, true)
	if major == 0 && minor == 0 {
		major, minor = 1, 1
	}
	chunked, err := transferEncoding(h, major, minor)
	if err != nil {
		return err
	}
	noBody := method == http.MethodHead || !bodyAllowedForStatus(resp.StatusCode)
	length, err := fixLength(h, noBody, chunked)
	if err != nil {
		return err
	}
	resp.ContentLength = length
	if method == http.MethodHead {
		if resp.ContentLength, err = parseContentLength(h["Content-Length"]); err != nil {
			return err
		}
	}
	if resp.Trailer, err = fixTrailer(h, chunked); err != nil {
		return err
	}
	if length == -1 && !chunked && bodyAllowedForStatus(resp.StatusCode) {
		// Unbounded body.
		closing = true
	}
	resp.Close = closing
	if chunked {
		p.te[0] = "chunked"
		resp.TransferEncoding = p.te[:1:1]
	}
	b := &p.body
	switch {
	case chunked && noBody, !chunked && length == 0:
		resp.Body = http.NoBody
	case chunked:
		b.reset(br, kindChunked, 0, closing, &resp.Trailer)
		resp.Body = b
	case length > 0:
		b.reset(br, kindLength, length, closing, nil)
		resp.Body = b
	case closing:
		b.reset(br, kindEOF, 0, closing, nil)
		resp.Body = b
	default:
		resp.Body = http.NoBody
	}
	return nil
}

// bodyAllowedForStatus reports whether a response with this status can
// have a body (RFC 9112 §6.3).
func bodyAllowedForStatus(status int) bool {
	return !(status >= 100 && status <= 199 || status == 204 || status == 304)
}

// shouldClose reports whether the connection closes after this message,
// as net/http decides it; with removeCloseHeader, a "close" Connection
// field of an HTTP/1.1 message is removed.
func shouldClose(major, minor int, h http.Header, removeCloseHeader bool) bool {
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

// transferEncoding removes the Transfer-Encoding field and reports
// whether the body is chunked: net/http (like nginx) accepts one field,
// "chunked" in any ASCII case, and ignores the field in HTTP/1.0.
func transferEncoding(h http.Header, major, minor int) (bool, error) {
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

// fixLength returns the body's length from the header, as net/http's
// fixLength does for a response: Content-Length fields that differ, or
// one that is not a number, are errors (equal duplicates are merged);
// noBody (a HEAD request, a 1xx, 204 or 304 status) means 0; chunked
// drops Content-Length and means -1, as does a response without either.
func fixLength(h http.Header, noBody, chunked bool) (int64, error) {
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
		if n, err = parseContentLength(lens); err != nil {
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
	return -1, nil
}

// parseContentLength parses the first Content-Length value, trimmed; -1
// when there is none.
func parseContentLength(lens []string) (int64, error) {
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

// fixTrailer returns the trailers a chunked message announces (keys with
// nil values) and removes its Trailer field; Transfer-Encoding, Trailer
// and Content-Length cannot be trailers. A message that is not chunked
// keeps its Trailer field and has no trailers.
func fixTrailer(h http.Header, chunked bool) (http.Header, error) {
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

// Body kinds of a messageBody.
const (
	kindLength  = iota // ContentLength bytes
	kindChunked        // chunked, then trailers
	kindEOF            // until the connection ends
)

// messageBody is the body of a message read from a connection, as
// net/http's: a length that ends early is io.ErrUnexpectedEOF, the last
// bytes of a length come with io.EOF, a chunked body's trailers are read
// at its end into *trailer, and Close reads what is left of a body that
// does not end with the connection. Each connection reuses its own.
type messageBody struct {
	br       *bufio.Reader
	kind     int
	n        int64 // bytes left of a kindLength body
	chunks   io.Reader
	trailer  *http.Header
	closing  bool
	sawEOF   bool
	closed   bool
	trailErr bool
}

func (b *messageBody) reset(br *bufio.Reader, kind int, n int64, closing bool, trailer *http.Header) {
	*b = messageBody{br: br, kind: kind, n: n, closing: closing, trailer: trailer}
	if kind == kindChunked {
		b.chunks = httputil.NewChunkedReader(br)
	}
}

func (b *messageBody) Read(p []byte) (int, error) {
	if b.closed {
		return 0, http.ErrBodyReadAfterClose
	}
	return b.read(p)
}

func (b *messageBody) read(p []byte) (n int, err error) {
	if b.sawEOF {
		return 0, io.EOF
	}
	switch b.kind {
	case kindLength:
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
	case kindChunked:
		n, err = b.chunks.Read(p)
		if err == io.EOF {
			b.sawEOF = true
			if terr := b.readTrailer(); terr != nil {
				// Nothing more is read from this body, nor from its
				// connection.
				err = terr
				b.sawEOF, b.closed, b.trailErr = false, true, true
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
func (b *messageBody) readTrailer() error {
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
// end, as Relay does before closing it).
func (b *messageBody) Close() error {
	if b.closed {
		return nil
	}
	var err error
	if !b.sawEOF && !(b.kind != kindChunked && b.closing) {
		_, err = io.Copy(io.Discard, bodyReader{b})
	}
	b.closed = true
	return err
}

// bodyReader reads a messageBody that Close is draining.
type bodyReader struct{ b *messageBody }

func (r bodyReader) Read(p []byte) (int, error) {
	if r.b.closed {
		return 0, http.ErrBodyReadAfterClose
	}
	return r.b.read(p)
}
