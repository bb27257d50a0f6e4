package edge

import (
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/edgectl/edgectl/pkg/rules"
)

// copyBufs holds the buffers that copy bodies between the client and the
// origin, so that no request allocates one.
var copyBufs = sync.Pool{New: func() any {
	b := make([]byte, 32<<10)
	return &b
}}

// relay sends the origin's response to the client: hop-by-hop headers
// removed, the response phase applied, then the body, streamed (flushed
// after every write) when its length is unknown or it is a server-sent
// event stream. It reports whether the origin connection can carry
// another request. An origin that fails mid-body aborts the client's
// response (http.ErrAbortHandler) so that the client never takes a
// truncated body for a whole one.
func relay(w *statusWriter, st *reqState, c *originConn, resp *http.Response, timeout time.Duration) (reusable bool) {
	removeHopByHop(resp.Header)
	applyResponsePhase(st, resp)
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
	rerr, werr := c.copyBody(w, resp.Body, stream, timeout)
	if rerr != nil {
		st.rec.Error = "reading the origin's response body: " + rerr.Error()
		panic(http.ErrAbortHandler)
	}
	if werr != nil {
		// The client went away: the rest of the body is not read.
		return false
	}
	resp.Body.Close()
	forwardTrailers(w, resp.Trailer, announced)
	return !resp.Close && c.br.Buffered() == 0
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

// applyResponsePhase runs the application's response phase on the
// origin's response and records the origin's latency and status.
func applyResponsePhase(st *reqState, resp *http.Response) {
	st.rec.Upstream = time.Since(st.sentAt)
	st.rec.UpstreamStatus = resp.StatusCode
	view := rules.ResponseView{Status: resp.StatusCode, Header: resp.Header, UpstreamStatus: resp.StatusCode, UpstreamHeader: resp.Header}
	st.domain.app.app.EvaluateResponse(&st.req, &view, &st.resp)
	for _, name := range st.resp.Filter {
		resp.Header.Del(name)
	}
	for _, hd := range st.resp.Add {
		resp.Header[hd.Name] = append(resp.Header[hd.Name], hd.Value)
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
func (c *originConn) copyBody(w *statusWriter, body io.Reader, stream bool, timeout time.Duration) (rerr, werr error) {
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
func forwardTrailers(w *statusWriter, trailer http.Header, announced int) {
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
