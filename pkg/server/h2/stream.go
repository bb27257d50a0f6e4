package h2

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/edgectl/edgectl/internal/cancelctx"
	"github.com/edgectl/edgectl/internal/httphead"
	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"
)

type streamState int

const (
	stateOpen streamState = iota
	stateHalfClosedRemote
	stateClosed
)

// stream is one request and its response.
type stream struct {
	c  *conn
	id uint32

	// Under c.mu.
	state   streamState
	started bool // its handler was started

	// Owned by the reading goroutine.
	declLen     int64 // the request's Content-Length, -1 if none
	recvd       int64
	gotTrailers bool

	// Flow control, under c.flowMu.
	sendWin           int64
	inAvail, inUnsent int64
	bodyClosed        bool  // the handler closed the body: no more stream WINDOW_UPDATE
	waiting           bool  // in c.waiters
	werr              error // set when the stream is closed: writes fail
	wake              chan struct{}

	// The request body, under bmu.
	bmu           sync.Mutex
	bbuf          []byte
	boff          int
	berr          error
	bclosed       bool
	bwake         chan struct{}
	trailer       http.Header
	needsContinue bool

	// ctx is the request's context, cancelled by abort (the connection's
	// teardown aborts every stream).
	ctx  cancelctx.Context
	req  http.Request
	url  url.URL // the request's URL when its :path is a plain origin form
	body requestBody
	rw   responseWriter
	// answer, when not nil, answers instead of the Handler (a header
	// list too large: 431; connection-specific fields: 400).
	answer http.HandlerFunc

	btimer, wtimer *time.Timer
}

// processHeaders opens a stream with a request, or ends one with its
// trailers.
func (c *conn) processHeaders(f *http2.MetaHeadersFrame) error {
	id := f.StreamID
	if id%2 != 1 {
		return connErr(http2.ErrCodeProtocol, "headers_even")
	}
	if st, state := c.streamState(id); st != nil {
		if state == stateHalfClosedRemote {
			return streamErr(id, http2.ErrCodeStreamClosed, "headers_half_closed")
		}
		return c.processTrailers(st, f)
	}
	if id <= c.maxStreamID.Load() {
		if c.resetRecently(id) {
			// Sent before the client saw the server's RST_STREAM.
			return nil
		}
		return connErr(http2.ErrCodeProtocol, "stream_went_down")
	}
	c.maxStreamID.Store(id)
	c.requested.Store(true)
	c.mu.Lock()
	over := len(c.streams)+1 > c.maxStreams
	c.mu.Unlock()
	if over {
		return streamErr(id, http2.ErrCodeRefusedStream, "over_max_streams")
	}
	if f.HasPriority() && f.Priority.StreamDep == id {
		return streamErr(id, http2.ErrCodeProtocol, "priority")
	}
	st, err := c.newStream(f)
	if err != nil {
		return err
	}
	c.requests++
	return c.schedule(st)
}

// newStream builds a stream and its request from a header block, with
// RFC 9113 §8's checks as x/net/http2 makes them.
func (c *conn) newStream(f *http2.MetaHeadersFrame) (*stream, error) {
	id := f.StreamID
	// The pseudo-header fields in one pass, by pointer: a HeaderField is
	// 40 bytes, and PseudoValue and RegularFields copy each they pass
	// (five scans of the pseudo fields, then one more, per request). x/net
	// refused duplicate and unknown ones (checkPseudos) before.
	var method, scheme, authority, path, protocol string
	n := 0
	for ; n < len(f.Fields); n++ {
		hf := &f.Fields[n]
		if !hf.IsPseudo() {
			break
		}
		switch hf.Name {
		case ":method":
			method = hf.Value
		case ":scheme":
			scheme = hf.Value
		case ":authority":
			authority = hf.Value
		case ":path":
			path = hf.Value
		case ":protocol":
			protocol = hf.Value
		}
	}
	if protocol != "" {
		// Extended CONNECT is not offered.
		return nil, streamErr(id, http2.ErrCodeProtocol, "bad_connect")
	}
	isConnect := method == "CONNECT"
	if isConnect {
		if path != "" || scheme != "" || authority == "" {
			return nil, streamErr(id, http2.ErrCodeProtocol, "bad_connect")
		}
	} else if method == "" || path == "" || (scheme != "https" && scheme != "http") {
		return nil, streamErr(id, http2.ErrCodeProtocol, "bad_path_method")
	}
	regular := f.Fields[n:]
	header := make(http.Header, len(regular))
	// One backing array for the values: a field seen once takes a slice
	// of it (capacity 1, so that an append copies).
	values := make([]string, len(regular))
	for i := range regular {
		hf := &regular[i]
		k := canonicalHeader(hf.Name)
		if vv, ok := header[k]; ok {
			header[k] = append(vv, hf.Value)
			continue
		}
		values[i] = hf.Value
		header[k] = values[i : i+1 : i+1]
	}
	needsContinue := httpguts.HeaderValuesContainsToken(header["Expect"], "100-continue")
	if needsContinue {
		delete(header, "Expect")
	}
	if cookies := header["Cookie"]; len(cookies) > 1 {
		header["Cookie"] = []string{strings.Join(cookies, "; ")}
	}
	var trailer http.Header
	for _, v := range header["Trailer"] {
		for _, key := range strings.Split(v, ",") {
			key = textproto.CanonicalMIMEHeaderKey(textproto.TrimString(key))
			switch key {
			case "Transfer-Encoding", "Trailer", "Content-Length":
			default:
				if trailer == nil {
					trailer = make(http.Header)
				}
				trailer[key] = nil
			}
		}
	}
	delete(header, "Trailer")
	if host := header["Host"]; len(host) == 1 {
		if authority == "" {
			authority = host[0]
		} else if host[0] != authority {
			return nil, streamErr(id, http2.ErrCodeProtocol, "authority_host_mismatch")
		}
		delete(header, "Host")
	} else if len(host) > 1 {
		return nil, streamErr(id, http2.ErrCodeProtocol, "multiple_host_headers")
	}
	if strings.IndexByte(authority, '@') >= 0 && (scheme == "http" || scheme == "https") {
		return nil, streamErr(id, http2.ErrCodeProtocol, "userinfo_in_authority")
	}
	if authority != "" && !httpguts.ValidHostHeader(authority) {
		return nil, streamErr(id, http2.ErrCodeProtocol, "invalid_authority")
	}
	var u *url.URL
	var plain url.URL // the common "/path?query", parsed without allocating
	var requestURI string
	if isConnect {
		u, requestURI = &url.URL{Host: authority}, authority
	} else {
		if path[0] != '/' && path != "*" {
			return nil, streamErr(id, http2.ErrCodeProtocol, "bad_path")
		}
		if !httphead.OriginForm(path, &plain) {
			var err error
			if u, err = url.ParseRequestURI(path); err != nil {
				return nil, streamErr(id, http2.ErrCodeProtocol, "bad_path")
			}
		}
		requestURI = path
	}

	st := &stream{c: c, id: id, declLen: -1, trailer: trailer, needsContinue: needsContinue}
	if u == nil {
		st.url = plain
		u = &st.url
	}
	st.ctx.InitValues(&c.ctx)
	st.state = stateOpen
	r := &st.req
	r.Method = method
	r.URL = u
	r.Proto, r.ProtoMajor, r.ProtoMinor = "HTTP/2.0", 2, 0
	r.Header = header
	r.Host = authority
	r.RemoteAddr = c.remoteAddr
	r.RequestURI = requestURI
	r.Trailer = trailer
	if scheme == "https" {
		r.TLS = c.connState()
	}
	if f.StreamEnded() {
		st.state = stateHalfClosedRemote
		r.Body = http.NoBody
		st.berr = io.EOF
	} else {
		if vv, ok := header["Content-Length"]; ok {
			if cl, err := strconv.ParseUint(vv[0], 10, 63); err == nil {
				r.ContentLength = int64(cl)
			}
		} else {
			r.ContentLength = -1
		}
		st.declLen = r.ContentLength
		st.body.st = st
		st.bwake = make(chan struct{}, 1)
		r.Body = &st.body
	}
	r = r.WithContext(&st.ctx)
	st.req = *r
	st.rw.st = st
	st.rw.header = headerPool.Get().(http.Header)
	st.rw.autoLen = -1

	if f.Truncated {
		st.answer = headerListTooLong
	} else if err := checkRequestHeaders(header); err != nil {
		msg := err.Error()
		st.answer = func(w http.ResponseWriter, r *http.Request) { http.Error(w, msg, http.StatusBadRequest) }
	}

	c.flowMu.Lock()
	st.sendWin = c.initSendWin
	st.inAvail = streamRecvWindow
	c.flowMu.Unlock()
	return st, nil
}

func headerListTooLong(w http.ResponseWriter, r *http.Request) {
	const statusRequestHeaderFieldsTooLarge = 431 // only in Go 1.6+
	w.WriteHeader(statusRequestHeaderFieldsTooLarge)
	io.WriteString(w, "<h1>HTTP Error 431</h1><p>Request Header Field(s) Too Large</p>")
}

// connHeaders are the connection-specific fields RFC 9113 §8.2.2 forbids.
var connHeaders = []string{"Connection", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding", "Upgrade"}

// checkRequestHeaders refuses connection-specific fields and a TE other
// than "trailers" (RFC 9113 §8.2.2): answered 400, as x/net/http2.
func checkRequestHeaders(h http.Header) error {
	for _, k := range connHeaders {
		if _, ok := h[k]; ok {
			return fmt.Errorf("request header %q is not valid in HTTP/2", k)
		}
	}
	te := h["Te"]
	if len(te) > 0 && (len(te) > 1 || (te[0] != "trailers" && te[0] != "")) {
		return errors.New(`request header "TE" may only be "trailers" in HTTP/2`)
	}
	return nil
}

// processTrailers ends an open stream with its trailers.
func (c *conn) processTrailers(st *stream, f *http2.MetaHeadersFrame) error {
	if st.gotTrailers {
		return connErr(http2.ErrCodeProtocol, "dup_trailers")
	}
	st.gotTrailers = true
	if !f.StreamEnded() {
		return streamErr(st.id, http2.ErrCodeProtocol, "trailers_not_ended")
	}
	if len(f.PseudoFields()) > 0 {
		return streamErr(st.id, http2.ErrCodeProtocol, "trailers_pseudo")
	}
	var got http.Header
	for _, hf := range f.RegularFields() {
		k := canonicalHeader(hf.Name)
		if !httpguts.ValidTrailerHeader(k) {
			return streamErr(st.id, http2.ErrCodeProtocol, "trailers_bogus")
		}
		if st.trailer != nil {
			if got == nil {
				got = make(http.Header)
			}
			got[k] = append(got[k], hf.Value)
		}
	}
	if got != nil {
		st.bmu.Lock()
		for k, vv := range got {
			if _, ok := st.trailer[k]; ok {
				st.trailer[k] = vv
			}
		}
		st.bmu.Unlock()
	}
	c.endStream(st)
	return nil
}

// schedule starts st's handler, or queues it while MaxConcurrentStreams
// handlers run. A client whose streams wait in a queue four times that
// long opens and resets streams faster than handlers finish (the rapid
// reset attack, CVE-2023-44487): its connection is closed.
func (c *conn) schedule(st *stream) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.streams[st.id] = st
	if c.ctx.Err() != nil {
		// After cancelStreams ran, it would not see st.
		st.ctx.Cancel()
	}
	c.idleSince.Store(0)
	if c.curHandlers < c.maxStreams {
		c.curHandlers++
		c.running.Add(1)
		st.started = true
		c.mu.Unlock()
		c.srv.workers.run(st)
		return nil
	}
	if len(c.queue) > 4*c.maxStreams {
		c.mu.Unlock()
		return connErr(http2.ErrCodeEnhanceYourCalm, "too_many_early_resets")
	}
	c.queue = append(c.queue, st)
	c.mu.Unlock()
	return nil
}

// handlerDone starts the next queued handler whose stream is still open.
func (c *conn) handlerDone() {
	c.mu.Lock()
	c.curHandlers--
	c.running.Add(-1)
	var next *stream
	for len(c.queue) > 0 && c.curHandlers < c.maxStreams {
		st := c.queue[0]
		c.queue[0] = nil
		c.queue = c.queue[1:]
		if c.streams[st.id] == st {
			next = st
			c.curHandlers++
			c.running.Add(1)
			st.started = true
			break
		}
	}
	if len(c.queue) == 0 {
		c.queue = nil
	}
	c.mu.Unlock()
	if next != nil {
		c.srv.workers.run(next)
	}
}

// serve runs the handler on a worker, then ends the stream: everything
// the handler wrote is written (or the stream reset) before serve
// returns.
func (st *stream) serve() {
	c := st.c
	defer c.handlerDone()
	defer func() {
		if p := recover(); p != nil {
			if p != http.ErrAbortHandler {
				buf := make([]byte, 64<<10)
				buf = buf[:runtime.Stack(buf, false)]
				c.srv.logf("panic serving request", "remote", c.remoteAddr, "panic", p, "stack", string(buf))
			}
			st.resetByServer(http2.ErrCodeInternal, errStreamClosed)
			st.rw.release()
		}
	}()
	h := st.answer
	if h == nil {
		h = c.srv.Handler.ServeHTTP
	}
	h(&st.rw, &st.req)
	st.rw.finish()
}

// abort closes the stream after a reset (by either side) or the
// connection's end: its context is cancelled, its body and writes fail.
func (st *stream) abort(err error) { st.abortBody(err, err) }

// abortBody is abort with the body failing with berr. The writes fail
// first: a handler woken by its body's failure finds its response
// refused.
func (st *stream) abortBody(err, berr error) {
	c := st.c
	c.flowMu.Lock()
	if st.werr == nil {
		st.werr = err
	}
	c.flowMu.Unlock()
	st.ctx.Cancel()
	st.closeBody(berr)
	st.discardBody()
	st.wakeWriter()
}

// discardBody drops what the handler left unread of a closed stream's
// body and gives it back to the connection's window: a handler that
// never reads its body does not shrink the window of the streams after
// it. A later read returns the error the body was closed with.
func (st *stream) discardBody() {
	if st.bwake == nil {
		return
	}
	st.bmu.Lock()
	st.dropBodyLocked()
}

// dropBodyLocked gives back the body's buffer and, to the connection's
// window, what the handler left unread in it; the stream's body is closed
// for flow control. st.bmu is held and is released.
func (st *stream) dropBodyLocked() {
	unread := len(st.bbuf) - st.boff
	putBodyBuf(st.bbuf)
	st.bbuf, st.boff = nil, 0
	st.bmu.Unlock()
	st.c.flowMu.Lock()
	st.bodyClosed = true
	st.c.flowMu.Unlock()
	if unread > 0 {
		st.c.giveConnInflow(int64(unread), true)
	}
}

// A request body's first bytes go to a pooled buffer; a body that
// outgrows it (a client sending faster than its handler reads, up to the
// stream window) grows its own.
const reqBufSize = 16 << 10

var reqBufPool = sync.Pool{New: func() any { b := make([]byte, 0, reqBufSize); return &b }}

func getBodyBuf() []byte { return (*reqBufPool.Get().(*[]byte))[:0] }

func putBodyBuf(b []byte) {
	if cap(b) == reqBufSize {
		b = b[:0]
		reqBufPool.Put(&b)
	}
}

// resetByServer resets an open stream with code.
func (st *stream) resetByServer(code http2.ErrCode, err error) {
	c := st.c
	c.mu.Lock()
	open := c.streams[st.id] == st
	if open {
		c.removeLocked(st)
		c.noteResetLocked(st.id)
	}
	c.mu.Unlock()
	st.abort(err)
	if open {
		c.lockWrite()
		if c.werr == nil && c.bw != nil {
			c.wfr.WriteRSTStream(st.id, code)
		}
		c.unlockWrite(true)
	}
}

// wakeWriter wakes the handler if it waits for window (the channel
// exists once it has waited).
func (st *stream) wakeWriter() {
	st.c.flowMu.Lock()
	wake := st.wake
	st.c.flowMu.Unlock()
	if wake == nil {
		return
	}
	select {
	case wake <- struct{}{}:
	default:
	}
}

// Request body.

// closeBody ends the body with err (io.EOF: complete).
func (st *stream) closeBody(err error) {
	if st.bwake == nil {
		return
	}
	st.bmu.Lock()
	if st.berr == nil {
		st.berr = err
	}
	st.bmu.Unlock()
	select {
	case st.bwake <- struct{}{}:
	default:
	}
}

// bodyWrite appends data the client sent; false when the handler closed
// the body (the data is dropped).
func (st *stream) bodyWrite(data []byte) bool {
	st.bmu.Lock()
	if st.bclosed || st.berr != nil {
		st.bmu.Unlock()
		return false
	}
	if st.boff > 0 && (st.boff == len(st.bbuf) || len(st.bbuf)+len(data) > cap(st.bbuf)) {
		// What the handler read is dropped before the buffer grows: it
		// holds only the unread bytes, bounded by the stream's window,
		// however long the body and however rarely the handler drains it.
		n := copy(st.bbuf, st.bbuf[st.boff:])
		st.bbuf, st.boff = st.bbuf[:n], 0
	}
	if st.bbuf == nil {
		st.bbuf = getBodyBuf()
	}
	st.bbuf = append(st.bbuf, data...)
	st.bmu.Unlock()
	select {
	case st.bwake <- struct{}{}:
	default:
	}
	return true
}

// requestBody is a stream's request body; each wait for the client's
// next bytes is bounded by BodyReadTimeout.
type requestBody struct{ st *stream }

func (b *requestBody) Read(p []byte) (int, error) {
	st := b.st
	if st.needsContinue {
		st.needsContinue = false
		st.rw.writeContinue()
	}
	st.bmu.Lock()
	for st.boff == len(st.bbuf) && st.berr == nil && !st.bclosed {
		st.bmu.Unlock()
		if err := st.waitBody(); err != nil {
			return 0, err
		}
		st.bmu.Lock()
	}
	if st.bclosed {
		st.bmu.Unlock()
		return 0, http.ErrBodyReadAfterClose
	}
	n := copy(p, st.bbuf[st.boff:])
	st.boff += n
	err := st.berr
	if st.boff < len(st.bbuf) {
		err = nil
	}
	if err == io.EOF && st.trailer != nil {
		st.req.Trailer = st.trailer
	}
	st.bmu.Unlock()
	if n > 0 {
		st.c.giveInflow(st, int64(n), true)
		if err != io.EOF {
			err = nil
		}
	}
	return n, err
}

// waitBody waits for the client's next bytes, for BodyReadTimeout at
// most; then the stream is reset.
func (st *stream) waitBody() error {
	d := st.c.srv.BodyReadTimeout
	if d <= 0 {
		select {
		case <-st.bwake:
		case <-st.ctx.Done():
			st.closeBody(st.ctx.Err())
		}
		return nil
	}
	if st.btimer == nil {
		st.btimer = time.NewTimer(d)
	} else {
		st.btimer.Reset(d)
	}
	select {
	case <-st.bwake:
		st.btimer.Stop()
		return nil
	case <-st.ctx.Done():
		st.btimer.Stop()
		st.closeBody(st.ctx.Err())
		return nil
	case <-st.btimer.C:
	}
	st.bmu.Lock()
	late := st.boff == len(st.bbuf) && st.berr == nil
	st.bmu.Unlock()
	if !late {
		return nil
	}
	st.c.srv.countTimeout("body")
	err := fmt.Errorf("h2: request body read: %w", os.ErrDeadlineExceeded)
	st.resetByServer(http2.ErrCodeInternal, err)
	return err
}

// Close discards what is buffered and what the client still sends; the
// connection's window is given back.
func (b *requestBody) Close() error {
	st := b.st
	st.bmu.Lock()
	if st.bclosed {
		st.bmu.Unlock()
		return nil
	}
	st.bclosed = true
	st.dropBodyLocked()
	return nil
}

var _ io.ReadCloser = (*requestBody)(nil)

// canonicalHeader is the canonical form of a lowercase field name, from a
// table for the common ones.
func canonicalHeader(v string) string {
	if s, ok := commonCanonical[v]; ok {
		return s
	}
	return textproto.CanonicalMIMEHeaderKey(v)
}

// lowerHeader is the wire form of a field name.
func lowerHeader(v string) string {
	if s, ok := commonLower[v]; ok {
		return s
	}
	return strings.ToLower(v)
}

var commonCanonical, commonLower = func() (map[string]string, map[string]string) {
	names := []string{
		"Accept", "Accept-Charset", "Accept-Encoding", "Accept-Language", "Accept-Ranges",
		"Age", "Access-Control-Allow-Credentials", "Access-Control-Allow-Headers",
		"Access-Control-Allow-Methods", "Access-Control-Allow-Origin", "Access-Control-Expose-Headers",
		"Access-Control-Max-Age", "Access-Control-Request-Headers", "Access-Control-Request-Method",
		"Allow", "Authorization", "Cache-Control", "Cdn-Loop", "Client-Cert", "Client-Cert-Chain",
		"Content-Disposition", "Content-Encoding", "Content-Language", "Content-Length",
		"Content-Location", "Content-Range", "Content-Type", "Cookie", "Date", "Etag", "Expect",
		"Expires", "Forwarded", "From", "Host", "If-Match", "If-Modified-Since", "If-None-Match",
		"If-Range", "If-Unmodified-Since", "Last-Modified", "Link", "Location", "Max-Forwards",
		"Origin", "Pragma", "Priority", "Proxy-Authenticate", "Proxy-Authorization", "Range", "Referer",
		"Refresh", "Retry-After", "Server", "Set-Cookie", "Strict-Transport-Security", "Te",
		"Trailer", "Transfer-Encoding", "User-Agent", "Vary", "Via", "Www-Authenticate",
		"X-Content-Type-Options", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto",
		"X-Frame-Options", "X-Request-Id", "X-Xss-Protection",
	}
	canon, lower := make(map[string]string, len(names)), make(map[string]string, len(names))
	for _, n := range names {
		l := strings.ToLower(n)
		canon[l] = n
		lower[n] = l
	}
	return canon, lower
}()
