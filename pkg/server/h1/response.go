package h1

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/net/http/httpguts"

	"github.com/edgectl/edgectl/internal/httphead"
)

// response is the http.ResponseWriter of one request; each connection
// reuses one.
type response struct {
	c      *conn
	req    *http.Request
	body   io.ReadCloser
	header http.Header
	keys   []string
	// trailers are the keys the Trailer header announced, sent after a
	// chunked body.
	trailers []string

	status      int
	wroteHeader bool
	// noBody: HEAD, 204 and 304 responses carry no body.
	noBody  bool
	chunked bool
	// contentLength is the declared length, -1 when unknown.
	contentLength int64
	written       int64
	closeAfter    bool
	sentContinue  bool
	err           error

	continueBody continueReader
	watchBody    watchedBody
}

var (
	_ http.ResponseWriter = (*response)(nil)
	_ http.Flusher        = (*response)(nil)
)

func (w *response) reset(req *http.Request) {
	if w.header == nil {
		w.header = make(http.Header) // the first, or released while idle
	}
	clear(w.header)
	*w = response{c: w.c, req: req, header: w.header, keys: w.keys[:0], trailers: w.trailers[:0], contentLength: -1}
}

// release lets go of the header map and slices the connection reuses from
// one response to the next, while it is idle.
func (w *response) release() {
	w.header, w.keys, w.trailers = nil, nil, nil
}

// forget drops what the response holds of its request and of the
// handler's headers, once it is finished.
func (w *response) forget() {
	clear(w.header)
	clear(w.keys)
	clear(w.trailers)
	*w = response{c: w.c, header: w.header, keys: w.keys[:0], trailers: w.trailers[:0], contentLength: -1}
}

// Header returns the response headers, to set before WriteHeader.
func (w *response) Header() http.Header { return w.header }

// WriteHeader writes the status line and headers. Informational statuses
// (1xx) are written at once and a final status may follow.
func (w *response) WriteHeader(code int) {
	if w.wroteHeader {
		return
	}
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("h1: invalid WriteHeader code %v", code))
	}
	bw := w.c.bw
	if code < 200 && code != http.StatusSwitchingProtocols {
		bw.WriteString("HTTP/1.1 ")
		writeStatus(bw, code)
		bw.WriteString("\r\n")
		w.writeHeaders(bw)
		bw.WriteString("\r\n")
		if err := bw.Flush(); err != nil {
			w.fail(err)
		}
		return
	}
	w.wroteHeader = true
	w.status = code
	req, h := w.req, w.header
	w.noBody = req.Method == http.MethodHead || code == http.StatusNoContent || code == http.StatusNotModified || code == http.StatusSwitchingProtocols
	if code == http.StatusNoContent || code == http.StatusSwitchingProtocols {
		delete(h, "Content-Length")
	}
	delete(h, "Transfer-Encoding")
	if v, ok := h["Content-Length"]; ok {
		n, err := strconv.ParseInt(strings.TrimSpace(firstOf(v)), 10, 64)
		if len(v) != 1 || err != nil || n < 0 {
			// A length that cannot be sent as is; frame the body instead.
			delete(h, "Content-Length")
		} else {
			w.contentLength = n
		}
	}
	if !w.noBody && w.contentLength < 0 {
		if req.ProtoAtLeast(1, 1) {
			w.chunked = true
		} else {
			// HTTP/1.0: the end of the connection ends the body.
			w.closeAfter = true
		}
	}
	if req.Close || httpguts.HeaderValuesContainsToken(h["Connection"], "close") || w.c.srv.shutdown.Load() {
		w.closeAfter = true
	}
	if w.continueBody.w != nil && !w.sentContinue && req.ContentLength != 0 {
		// The client waits for "100 Continue" before it sends its body; it
		// will not get it, so the body will never come.
		w.closeAfter = true
	}
	delete(h, "Connection")
	if w.chunked {
		for _, v := range h["Trailer"] {
			for _, k := range strings.Split(v, ",") {
				if k = strings.TrimSpace(k); k != "" {
					w.trailers = append(w.trailers, http.CanonicalHeaderKey(k))
				}
			}
		}
	} else {
		delete(h, "Trailer")
	}

	bw.WriteString("HTTP/1.1 ")
	writeStatus(bw, code)
	bw.WriteString("\r\n")
	w.writeHeaders(bw)
	if _, ok := h["Date"]; !ok {
		httphead.WriteField(bw, "Date", httphead.Date())
	}
	if w.chunked {
		bw.WriteString("Transfer-Encoding: chunked\r\n")
	}
	switch {
	case w.closeAfter:
		bw.WriteString("Connection: close\r\n")
	case req.ProtoMajor == 1 && req.ProtoMinor == 0:
		bw.WriteString("Connection: keep-alive\r\n")
	}
	bw.WriteString("\r\n")
}

// writeHeaders writes the header fields in key order, skipping invalid
// names and turning line breaks in values into spaces (as net/http does).
func (w *response) writeHeaders(bw *bufio.Writer) {
	keys := w.keys[:0]
	for k := range w.header {
		if !slices.Contains(w.trailers, k) && !strings.HasPrefix(k, http.TrailerPrefix) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	w.keys = keys
	for _, k := range keys {
		if !httpguts.ValidHeaderFieldName(k) {
			continue
		}
		for _, v := range w.header[k] {
			httphead.WriteField(bw, k, fieldValue(v))
		}
	}
}

// fieldValue is v as it goes on the wire: line breaks turned into
// spaces, surrounding white space trimmed.
func fieldValue(v string) string {
	if strings.ContainsAny(v, "\r\n") {
		v = strings.NewReplacer("\r", " ", "\n", " ").Replace(v)
	}
	return strings.TrimSpace(v)
}

// Write writes body bytes, after the header (status 200 unless written).
func (w *response) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.err != nil {
		return 0, w.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	if w.noBody {
		if w.req.Method == http.MethodHead {
			return len(p), nil
		}
		return 0, http.ErrBodyNotAllowed
	}
	var tooLong error
	if w.contentLength >= 0 && w.written+int64(len(p)) > w.contentLength {
		p = p[:w.contentLength-w.written]
		tooLong = http.ErrContentLength
	}
	bw := w.c.bw
	if w.chunked {
		var buf [16]byte
		bw.Write(strconv.AppendInt(buf[:0], int64(len(p)), 16))
		bw.WriteString("\r\n")
	}
	n, err := bw.Write(p)
	if w.chunked && err == nil {
		_, err = bw.WriteString("\r\n")
	}
	w.written += int64(n)
	if err != nil {
		w.fail(err)
		return n, err
	}
	return n, tooLong
}

// Flush sends what is buffered to the client.
func (w *response) Flush() {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.err == nil {
		if err := w.c.bw.Flush(); err != nil {
			w.fail(err)
		}
	}
}

func (w *response) fail(err error) {
	w.err = err
	w.closeAfter = true
}

// finish completes the response after the handler returned.
func (w *response) finish() {
	if !w.wroteHeader {
		// Nothing written: an empty body of known length.
		if _, ok := w.header["Content-Length"]; !ok {
			w.header["Content-Length"] = zeroLength
		}
		w.WriteHeader(http.StatusOK)
	}
	if w.chunked && w.err == nil {
		w.c.bw.WriteString("0\r\n")
		w.writeTrailers(w.c.bw)
		w.c.bw.WriteString("\r\n")
	}
	if !w.noBody && w.contentLength >= 0 && w.written < w.contentLength {
		// The body is shorter than announced: the client must not read
		// the next response as its end.
		w.closeAfter = true
	}
	if w.err == nil {
		if err := w.c.bw.Flush(); err != nil {
			w.fail(err)
		}
	}
}

// writeTrailers writes the announced trailers the handler set after
// WriteHeader, and those it set with http.TrailerPrefix.
func (w *response) writeTrailers(bw *bufio.Writer) {
	write := func(k string, vv []string) {
		if !httpguts.ValidHeaderFieldName(k) || !httpguts.ValidTrailerHeader(k) {
			return
		}
		for _, v := range vv {
			httphead.WriteField(bw, k, fieldValue(v))
		}
	}
	for _, k := range w.trailers {
		write(k, w.header[k])
	}
	for k, vv := range w.header {
		if name, ok := strings.CutPrefix(k, http.TrailerPrefix); ok {
			write(http.CanonicalHeaderKey(name), vv)
		}
	}
}

var zeroLength = []string{"0"}

func firstOf(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

func writeStatus(bw *bufio.Writer, code int) {
	writeInt(bw, int64(code))
	bw.WriteString(" ")
	text := http.StatusText(code)
	if text == "" {
		text = "status code " + strconv.Itoa(code)
	}
	bw.WriteString(text)
}

func writeInt(bw *bufio.Writer, n int64) {
	// Formatted in the writer's own buffer: a local array would escape
	// through bw.Write.
	if bw.Available() < 20 {
		bw.Flush()
	}
	bw.Write(strconv.AppendInt(bw.AvailableBuffer(), n, 10))
}
