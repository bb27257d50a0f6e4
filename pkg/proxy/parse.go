package proxy

import (
	"bufio"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/edgectl/edgectl/internal/httphead"
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
	body   httphead.Body
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
	httphead.FixPragmaCacheControl(resp.Header)
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
	closing := httphead.ShouldClose(major, minor, h, true)
	if major == 0 && minor == 0 {
		major, minor = 1, 1
	}
	chunked, err := httphead.TransferEncoding(h, major, minor)
	if err != nil {
		return err
	}
	noBody := method == http.MethodHead || !httphead.BodyAllowedForStatus(resp.StatusCode)
	length, err := httphead.FixLength(h, noBody, chunked, false)
	if err != nil {
		return err
	}
	resp.ContentLength = length
	if method == http.MethodHead {
		if resp.ContentLength, err = httphead.ParseContentLength(h["Content-Length"]); err != nil {
			return err
		}
	}
	if resp.Trailer, err = httphead.FixTrailer(h, chunked); err != nil {
		return err
	}
	if length == -1 && !chunked && httphead.BodyAllowedForStatus(resp.StatusCode) {
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
		b.Reset(br, httphead.BodyChunked, 0, closing, &resp.Trailer)
		resp.Body = b
	case length > 0:
		b.Reset(br, httphead.BodyLength, length, closing, nil)
		resp.Body = b
	case closing:
		b.Reset(br, httphead.BodyEOF, 0, closing, nil)
		resp.Body = b
	default:
		resp.Body = http.NoBody
	}
	return nil
}
