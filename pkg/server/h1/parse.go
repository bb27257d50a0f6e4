package h1

import (
	"bufio"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/edgectl/edgectl/internal/httphead"
	"golang.org/x/net/http/httpguts"
)

// requestReader parses a connection's requests as http.ReadRequest does
// (FuzzReadRequest compares the two), into memory reused from request to
// request: the Request, its URL, its Header map and its body reader. The
// strings (method, target, keys, values) are substrings of one string
// conversion of the head, and the values' slices are new for every
// request: a handler may keep them. The rest is reused once the handler
// has returned, which a handler must not outlive with the request (the
// net/http ResponseWriter rules). requestReaders are pooled: a connection
// holds one only while it serves a request.
type requestReader struct {
	req    http.Request
	url    url.URL
	header http.Header
	te     [1]string
	body   httphead.Body
}

var requestReaders = sync.Pool{New: func() any { return &requestReader{header: make(http.Header)} }}

// release returns p to the pool; nothing of its last request is kept.
func (p *requestReader) release() {
	clear(p.header)
	p.req, p.url, p.body = http.Request{}, url.URL{}, httphead.Body{}
	requestReaders.Put(p)
}

var errMalformedRequest = errors.New("malformed HTTP request")

// read reads the next request from br. base, when not nil, is copied
// into the Request before its fields are set (it carries the
// connection's context).
func (p *requestReader) read(br *bufio.Reader, base *http.Request) (*http.Request, error) {
	head, err := httphead.Read(br, checkRequestLine)
	if err != nil {
		return nil, err
	}
	line, fields := httphead.Line(head)
	req := &p.req
	if base != nil {
		*req = *base
	} else {
		*req = http.Request{}
	}
	clear(p.header)
	req.Header = p.header
	if err := p.parseRequestLine(req, line); err != nil {
		return nil, err
	}
	if err := httphead.ParseFields(req.Header, fields); err != nil {
		return nil, err
	}
	if len(req.Header["Host"]) > 1 {
		return nil, errors.New("too many Host headers")
	}
	// RFC 9112 §3.2.2: an absolute-form target's authority is the Host.
	req.Host = req.URL.Host
	if req.Host == "" {
		if h := req.Header["Host"]; len(h) > 0 {
			req.Host = h[0]
		}
	}
	httphead.FixPragmaCacheControl(req.Header)
	req.Close = httphead.ShouldClose(req.ProtoMajor, req.ProtoMinor, req.Header, false)
	if err := p.frame(br, req); err != nil {
		return nil, err
	}
	if req.Method == "PRI" && len(req.Header) == 0 && req.URL.Path == "*" && req.Proto == "HTTP/2.0" {
		// The HTTP/2 preface: net/http frames it so.
		req.ContentLength, req.Close = -1, true
	}
	delete(req.Header, "Host")
	return req, nil
}

// checkRequestLine fails on a request line http.ReadRequest refuses.
func checkRequestLine(line []byte) error {
	var p requestReader
	return p.parseRequestLine(&p.req, string(line))
}

// parseRequestLine sets the method, target, version and URL of req from
// its request line, as http.ReadRequest does.
func (p *requestReader) parseRequestLine(req *http.Request, line string) error {
	method, rest, ok1 := strings.Cut(line, " ")
	target, proto, ok2 := strings.Cut(rest, " ")
	if !ok1 || !ok2 {
		return fmt.Errorf("%w: %q", errMalformedRequest, line)
	}
	req.Method, req.RequestURI, req.Proto = method, target, proto
	if !httpguts.ValidHeaderFieldName(method) {
		return fmt.Errorf("invalid method %q", method)
	}
	var ok bool
	if req.ProtoMajor, req.ProtoMinor, ok = http.ParseHTTPVersion(proto); !ok {
		return fmt.Errorf("malformed HTTP version %q", proto)
	}
	// A CONNECT target is an authority, read as the host of a URL.
	justAuthority := method == http.MethodConnect && !strings.HasPrefix(target, "/")
	if !justAuthority && httphead.OriginForm(target, &p.url) {
		req.URL = &p.url
		return nil
	}
	raw := target
	if justAuthority {
		raw = "http://" + target
	}
	u, err := url.ParseRequestURI(raw)
	if err != nil {
		return err
	}
	if justAuthority {
		u.Scheme = ""
	}
	req.URL = u
	return nil
}

// frame sets the request's framing (ContentLength, TransferEncoding,
// Trailer) and its Body, as net/http's readTransfer does for a request.
func (p *requestReader) frame(br *bufio.Reader, req *http.Request) error {
	h := req.Header
	major, minor := req.ProtoMajor, req.ProtoMinor
	if major == 0 && minor == 0 {
		major, minor = 1, 1
	}
	chunked, err := httphead.TransferEncoding(h, major, minor)
	if err != nil {
		return err
	}
	length, err := httphead.FixLength(h, false, chunked, true)
	if err != nil {
		return err
	}
	req.ContentLength = length
	if req.Trailer, err = httphead.FixTrailer(h, chunked); err != nil {
		return err
	}
	switch {
	case chunked:
		p.te[0] = "chunked"
		req.TransferEncoding = p.te[:1:1]
		p.body.Reset(br, httphead.BodyChunked, 0, req.Close, &req.Trailer)
		req.Body = &p.body
	case length > 0:
		p.body.Reset(br, httphead.BodyLength, length, req.Close, nil)
		req.Body = &p.body
	default:
		req.Body = http.NoBody
	}
	return nil
}
