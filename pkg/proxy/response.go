package proxy

import (
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// copyBufs holds the buffers that copy bodies between the client and the
// origin, so that no request allocates one.
// copyBufSize is the size of the buffers of copyBufs.
const copyBufSize = 32 << 10

var copyBufs = sync.Pool{New: func() any {
	b := make([]byte, copyBufSize)
	return &b
}}

// BodyError is a failure to read the origin's response body after its
// head was relayed: the client's response must be aborted so that the
// client never takes a truncated body for a whole one.
type BodyError struct{ Err error }

func (e *BodyError) Error() string { return "reading the origin's response body: " + e.Err.Error() }

// Unwrap returns the read error.
func (e *BodyError) Unwrap() error { return e.Err }

// Relay sends the origin's response to w: x.Response's header (added to
// what w holds), then the body, streamed (flushed after every write) when
// its length is unknown or it is a server-sent event stream, then the
// trailers. It reports whether the origin connection can carry another
// request. An origin that fails mid-body returns a *BodyError; a client
// that goes away ends the relay without an error, the connection not
// reusable.
func (x *Exchange) Relay(w ResponseWriter) (reusable bool, err error) {
	resp, c := x.Response, x.c
	h := w.Header()
	for k, vv := range resp.Header {
		if old, ok := h[k]; ok {
			vv = append(old, vv...)
		}
		h[k] = vv
	}
	announced := announceTrailers(h, resp.Trailer)
	w.WriteHeader(resp.StatusCode)
	stream := resp.ContentLength < 0 || isEventStream(resp.Header)
	if stream && c.br.Buffered() == 0 {
		// Nothing of the body is here yet: let the client see the head.
		w.Flush()
	}
	rerr, werr := c.copyBody(w, resp.Body, stream, x.o.responseTimeout)
	if rerr != nil && x.ctx != nil && x.ctx.Err() != nil {
		// The client went away and its context closed the connection.
		return false, nil
	}
	if rerr != nil {
		return false, &BodyError{rerr}
	}
	if werr != nil {
		// The client went away: the rest of the body is not read.
		return false, nil
	}
	resp.Body.Close()
	forwardTrailers(w, resp.Trailer, announced)
	return !resp.Close && c.br.Buffered() == 0, nil
}

// removeHopByHop removes the hop-by-hop headers of an origin response,
// and those its Connection header names.
func removeHopByHop(h http.Header) {
	conn := h["Connection"]
	for k := range h {
		if hopByHop(k, conn) {
			delete(h, k)
		}
	}
}

// isEventStream reports whether the response is a server-sent event
// stream (Content-Type text/event-stream), which is flushed as it comes.
func isEventStream(h http.Header) bool {
	const es = "text/event-stream"
	ct := h.Get("Content-Type")
	if len(ct) < len(es) || !strings.EqualFold(ct[:len(es)], es) {
		return false
	}
	rest := ct[len(es):]
	return rest == "" || rest[0] == ';' || rest[0] == ' ' || rest[0] == '\t'
}

// copyBody copies the response body to the client. rerr is a failure to
// read from the origin (each read must complete within timeout), werr a
// failure to write to the client.
func (c *originConn) copyBody(w ResponseWriter, body io.Reader, stream bool, timeout time.Duration) (rerr, werr error) {
	if body == http.NoBody {
		return nil, nil
	}
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	buf := *bp
	for {
		if c.br.Buffered() == 0 {
			// The next read waits for the origin. (What is buffered is
			// read without touching the socket: small bodies arrive with
			// their head, under the exchange's deadline.)
			c.conn.SetReadDeadline(time.Now().Add(timeout))
		}
		n, err := body.Read(buf)
		if n > 0 {
			if _, werr = w.Write(buf[:n]); werr != nil {
				return nil, werr
			}
			if stream {
				w.Flush()
			}
		}
		if err == io.EOF {
			return nil, nil
		}
		if err != nil {
			return err, nil
		}
	}
}

// announceTrailers declares the origin's trailers to the client before
// the head is written, and returns how many were declared.
func announceTrailers(h, trailer http.Header) int {
	if len(trailer) == 0 {
		return 0
	}
	keys := make([]string, 0, len(trailer))
	for k := range trailer {
		keys = append(keys, k)
	}
	h.Add("Trailer", strings.Join(keys, ", "))
	return len(keys)
}

// forwardTrailers sends the origin's trailers, read with the end of the
// body, as httputil.ReverseProxy does: declared ones under their names,
// undeclared ones with http.TrailerPrefix.
func forwardTrailers(w ResponseWriter, trailer http.Header, announced int) {
	if len(trailer) == 0 {
		return
	}
	// Force chunking, so that no Content-Length is computed for a short
	// body and the trailers can follow it.
	w.Flush()
	h := w.Header()
	for k, vv := range trailer {
		name := k
		if len(trailer) != announced {
			name = http.TrailerPrefix + k
		}
		for _, v := range vv {
			h.Add(name, v)
		}
	}
}
