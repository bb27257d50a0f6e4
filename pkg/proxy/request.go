package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/edgectl/edgectl/internal/headersafe"
	"github.com/edgectl/edgectl/internal/httphead"
)

// The origin request is written the way httputil.ReverseProxy with a
// Rewrite hook that calls SetURL and SetXForwarded, and http.Transport,
// would write it:
//
//   - the request target is the origin URL's path joined with the client's
//     (or the rewritten path), with the origin URL's query first;
//   - Host is the application's hostHeader;
//   - the client's headers follow, without the hop-by-hop headers (those
//     of RFC 9110 section 7.6.1 and every header the client's Connection
//     header names), without Forwarded and X-Forwarded-*, and without the
//     headers the request phase filters;
//   - then X-Forwarded-For (the client's address, never the client's
//     value), X-Forwarded-Host and X-Forwarded-Proto, "Te: trailers" when
//     the client accepts trailers, then the headers the request phase adds.
//
// Hop-by-hop stripping only ever applies to the client's headers, so a
// client cannot make the edge drop the headers the edge sets (for example
// with "Connection: Client-Cert"). The client's User-Agent is forwarded
// as is, and none is sent when the client sent none.

// writeHead writes the request line and the header section of the origin
// request for r. bodyLen is the request body's length, -1 when unknown.
// A header name or value that could break the message framing (CR, LF,
// NUL and other control bytes) fails the request instead of being sent.
func (o *Origin) writeHead(bw *bufio.Writer, r *http.Request, out *Outbound, host string, bodyLen int64) error {
	if !httpguts.ValidHostHeader(host) {
		return fmt.Errorf("invalid Host header %q for the origin", host)
	}
	bw.WriteString(r.Method)
	bw.WriteByte(' ')
	o.writeTarget(bw, r, out.Path, out.NormalPath)
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(host)
	bw.WriteString("\r\n")
	filter := out.Filter
	if err := writeClientHeaders(bw, r.Header, filter); err != nil {
		return err
	}
	if err := writeForwarded(bw, r, filter); err != nil {
		return err
	}
	if httpguts.HeaderValuesContainsToken(r.Header["Te"], "trailers") {
		bw.WriteString("Te: trailers\r\n")
	}
	if out.Add != nil {
		for i := range out.Add.Len() {
			name, value := out.Add.Field(i)
			if err := writeField(bw, name, value); err != nil {
				return err
			}
		}
	}
	writeFraming(bw, r, bodyLen, o.forwardedTrailers(r, filter))
	bw.WriteString("\r\n")
	return nil
}

// writeTarget writes the request target: the rewritten path when the
// request phase rewrote it, else the origin's base path joined with the
// client's path, escaped as url.URL.RequestURI escapes it.
//
// The asterisk form of "OPTIONS *" (RFC 9112 section 3.2.4), which asks
// about the server rather than a resource, is sent as is.
//
// normal, when not empty, is the client's path normalised by the edge
// (escaped, without query), sent instead of r.URL's path.
func (o *Origin) writeTarget(bw *bufio.Writer, r *http.Request, rewritten, normal string) {
	if rewritten == "" && r.Method == http.MethodOptions && r.URL.Path == "*" && r.URL.RawQuery == "" {
		bw.WriteByte('*')
		return
	}
	if rewritten != "" {
		path, query, _ := strings.Cut(rewritten, "?")
		u := url.URL{Path: singleJoin(o.url.Path, path)}
		writePath(bw, &u)
		if query != "" || r.URL.ForceQuery {
			bw.WriteByte('?')
			writeQuery(bw, query)
		}
		return
	}
	if normal != "" {
		bw.WriteString(singleJoin(o.url.EscapedPath(), normal))
	} else {
		var u url.URL
		u.Path, u.RawPath = joinURLPath(o.url, r.URL)
		writePath(bw, &u)
	}
	base, query := o.url.RawQuery, cleanQueryParams(r.URL.RawQuery)
	if base == "" && query == "" && !r.URL.ForceQuery {
		return
	}
	bw.WriteByte('?')
	writeQuery(bw, base)
	if base != "" && query != "" {
		bw.WriteByte('&')
	}
	writeQuery(bw, query)
}

// writeQuery writes a query, percent-encoding every byte that may not
// appear in the query of a request target (RFC 3986: space, '#', '"',
// control bytes, non-ASCII...), so that a rewritten query (templates may
// render such bytes) cannot change the request line. Existing escapes are
// kept.
func writeQuery(bw *bufio.Writer, q string) {
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(q); i++ {
		if c := q[i]; queryByte(c) {
			bw.WriteByte(c)
		} else {
			bw.Write([]byte{'%', hex[c>>4], hex[c&15]})
		}
	}
}

// queryByte reports whether c may appear as is in a query: unreserved,
// sub-delims, ':', '@', '/', '?' and '%' (of an escape).
func queryByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("-._~!$&'()*+,;=:@/?%", c) >= 0
}

func writePath(bw *bufio.Writer, u *url.URL) {
	p := u.EscapedPath()
	if p == "" {
		p = "/"
	}
	bw.WriteString(p)
}

// joinURLPath joins the origin URL's path with the request's, keeping an
// escaped form when either has one (httputil's joinURLPath).
func joinURLPath(a, b *url.URL) (path, rawpath string) {
	if a.RawPath == "" && b.RawPath == "" {
		return singleJoin(a.Path, b.Path), ""
	}
	apath, bpath := a.EscapedPath(), b.EscapedPath()
	aslash, bslash := strings.HasSuffix(apath, "/"), strings.HasPrefix(bpath, "/")
	switch {
	case aslash && bslash:
		return a.Path + b.Path[1:], apath + bpath[1:]
	case !aslash && !bslash:
		return a.Path + "/" + b.Path, apath + "/" + bpath
	}
	return a.Path + b.Path, apath + bpath
}

func singleJoin(base, p string) string {
	if base == "" || base == "/" {
		if !strings.HasPrefix(p, "/") {
			return "/" + p
		}
		return p
	}
	return strings.TrimSuffix(base, "/") + "/" + strings.TrimPrefix(p, "/")
}

// maxQueryParams is net/url's default limit of query parameters.
const maxQueryParams = 10000

// cleanQueryParams re-encodes a query that net/url would not parse the way
// the origin might (semicolons, bad escapes, too many parameters), as
// httputil.ReverseProxy does, so that the edge's rules and the origin see
// the same parameters. A clean query is returned as is.
func cleanQueryParams(s string) string {
	reencode := func(s string) string {
		v, _ := url.ParseQuery(s)
		return v.Encode()
	}
	if strings.Count(s, "&")+1 > maxQueryParams {
		return reencode(s)
	}
	for i := 0; i < len(s); {
		switch s[i] {
		case ';':
			return reencode(s)
		case '%':
			if i+2 >= len(s) || !ishex(s[i+1]) || !ishex(s[i+2]) {
				return reencode(s)
			}
			i += 3
		default:
			i++
		}
	}
	return s
}

func ishex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// writeClientHeaders writes the client's headers that may reach the
// origin. Header keys are canonical: net/http's parsers (HTTP/1 and
// HTTP/2) canonicalize them.
func writeClientHeaders(bw *bufio.Writer, h http.Header, filter []string) error {
	conn := h["Connection"]
	for k, vv := range h {
		if !forwardable(k, conn, filter) {
			continue
		}
		for _, v := range vv {
			if err := writeField(bw, k, v); err != nil {
				return err
			}
		}
	}
	return nil
}

// forwardable reports whether the client's header k may reach the origin.
func forwardable(k string, conn, filter []string) bool {
	if hopByHop(k, conn) {
		return false
	}
	switch k {
	case "Host", "Content-Length":
		// The edge frames the origin request itself.
		return false
	case "Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto":
		// The edge sets these; a client's value is never trusted.
		return false
	}
	return !filtered(filter, k)
}

// hopByHop reports whether the header k (canonical) of a message is
// hop-by-hop: one of RFC 9110 section 7.6.1's, or named in the message's
// Connection header values conn.
func hopByHop(k string, conn []string) bool {
	switch k {
	case "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
		"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade":
		return true
	}
	return len(conn) > 0 && httpguts.HeaderValuesContainsToken(conn, k)
}

// filtered reports whether the request phase filters the header k.
func filtered(filter []string, k string) bool {
	for _, f := range filter {
		if f == k {
			return true
		}
	}
	return false
}

// writeForwarded writes X-Forwarded-For (the client's address), -Host (the
// Host it asked for) and -Proto, as httputil.ProxyRequest.SetXForwarded
// sets them, unless the request phase filters them.
func writeForwarded(bw *bufio.Writer, r *http.Request, filter []string) error {
	if ip, _, err := net.SplitHostPort(r.RemoteAddr); err == nil && !filtered(filter, "X-Forwarded-For") {
		if err := writeField(bw, "X-Forwarded-For", ip); err != nil {
			return err
		}
	}
	if !filtered(filter, "X-Forwarded-Host") {
		if err := writeField(bw, "X-Forwarded-Host", r.Host); err != nil {
			return err
		}
	}
	if !filtered(filter, "X-Forwarded-Proto") {
		proto := "https"
		if r.TLS == nil {
			proto = "http"
		}
		httphead.WriteField(bw, "X-Forwarded-Proto", proto)
	}
	return nil
}

// writeField writes one header field, refusing a name that is not a token
// or a value with control bytes: either could smuggle a second request.
func writeField(bw *bufio.Writer, name, value string) error {
	if !httpguts.ValidHeaderFieldName(name) {
		return fmt.Errorf("invalid header field name %q for the origin", name)
	}
	// Visible ASCII and spaces are valid; headersafe tests them a word at
	// a time (identity headers carry a certificate of a kilobyte or more).
	if !headersafe.Is(value) && !httpguts.ValidHeaderFieldValue(value) {
		return fmt.Errorf("invalid value of header field %q for the origin", name)
	}
	httphead.WriteField(bw, name, textproto.TrimString(value))
	return nil
}

// forwardedTrailers returns the client's trailers that may reach the
// origin, by the rules of its headers: no hop-by-hop, framing or
// forwarding fields, none the request phase filters, and none of the
// names the application's rules set (so a trailer cannot forge an
// identity header either). Before the body is read it holds the announced
// names; after, their values.
func (o *Origin) forwardedTrailers(r *http.Request, filter []string) http.Header {
	if len(r.Trailer) == 0 {
		return nil
	}
	t := make(http.Header, len(r.Trailer))
	conn := r.Header["Connection"]
	for k, vv := range r.Trailer {
		if httpguts.ValidHeaderFieldName(k) && httpguts.ValidTrailerHeader(k) && forwardable(k, conn, filter) {
			t[k] = vv
		}
	}
	if o.stripTrailers != nil {
		o.stripTrailers(t)
	}
	return t
}

// writeFraming writes how the body is delimited: Content-Length for a body
// of known length (and, as http.Transport does, "Content-Length: 0" for a
// POST, PUT or PATCH without one), chunked encoding otherwise, declaring
// the trailers that will follow it.
func writeFraming(bw *bufio.Writer, r *http.Request, bodyLen int64, trailer http.Header) {
	switch {
	case bodyLen > 0:
		bw.WriteString("Content-Length: ")
		writeInt(bw, bodyLen, 10)
		bw.WriteString("\r\n")
	case bodyLen < 0:
		bw.WriteString("Transfer-Encoding: chunked\r\n")
		if len(trailer) > 0 {
			bw.WriteString("Trailer: ")
			sep := ""
			for k := range trailer {
				bw.WriteString(sep)
				bw.WriteString(k)
				sep = ", "
			}
			bw.WriteString("\r\n")
		}
	case r.Method == http.MethodPost || r.Method == http.MethodPut || r.Method == http.MethodPatch:
		bw.WriteString("Content-Length: 0\r\n")
	}
}

// writeInt writes n in base without allocating.
func writeInt(bw *bufio.Writer, n int64, base int) {
	if bw.Available() < 24 {
		bw.Flush() // an error sticks to bw and is reported by its next Flush
	}
	bw.Write(strconv.AppendInt(bw.AvailableBuffer(), n, base))
}

// bodyLength returns the length of r's body: 0 for none, -1 when unknown.
func bodyLength(r *http.Request) int64 {
	if r.Body == nil || r.Body == http.NoBody {
		return 0
	}
	return r.ContentLength
}

// ClientBodyError is a failure to read the client's request body.
type ClientBodyError struct{ Err error }

func (e *ClientBodyError) Error() string { return "reading the request body: " + e.Err.Error() }

// Unwrap returns the read error.
func (e *ClientBodyError) Unwrap() error { return e.Err }

// writeBody copies the request body to the origin: exactly bodyLen bytes,
// or chunked (flushing every chunk, so that a streamed upload streams)
// when bodyLen is -1. Each write to the origin must complete within
// timeout. trailer returns the trailers to send after a chunked body.
func (c *originConn) writeBody(r *http.Request, bodyLen int64, timeout time.Duration, trailer func() http.Header) error {
	if bodyLen == 0 {
		return nil
	}
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	buf := *bp
	chunked := bodyLen < 0
	for remaining := bodyLen; remaining != 0; {
		p := buf
		if !chunked && remaining < int64(len(p)) {
			p = p[:remaining]
		}
		n, rerr := r.Body.Read(p)
		if n > 0 {
			c.conn.SetWriteDeadline(time.Now().Add(timeout))
			if err := c.writeChunk(p[:n], chunked); err != nil {
				return err
			}
			if !chunked {
				remaining -= int64(n)
			}
		}
		switch {
		case rerr == io.EOF && chunked:
			return c.endChunked(trailer())
		case rerr == io.EOF && remaining > 0:
			return &ClientBodyError{io.ErrUnexpectedEOF}
		case rerr != nil && rerr != io.EOF:
			return &ClientBodyError{rerr}
		}
	}
	return nil
}

// writeChunk writes p as is or as one chunk.
func (c *originConn) writeChunk(p []byte, chunked bool) error {
	if !chunked {
		_, err := c.bw.Write(p)
		return err
	}
	writeInt(c.bw, int64(len(p)), 16)
	c.bw.WriteString("\r\n")
	c.bw.Write(p)
	c.bw.WriteString("\r\n")
	return c.bw.Flush()
}

// endChunked writes the last chunk and the client's trailers.
func (c *originConn) endChunked(trailer http.Header) error {
	c.bw.WriteString("0\r\n")
	for k, vv := range trailer {
		for _, v := range vv {
			if err := writeField(c.bw, k, v); err != nil {
				return err
			}
		}
	}
	_, err := c.bw.WriteString("\r\n")
	return err
}
