package h2

import (
	"errors"
	"fmt"
	"net/http"
	"net/textproto"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/edgectl/edgectl/internal/httphead"
)

// bodyBufSize is how much of a response is held before it is written: a
// response that fits is written with its head in one lock hold, with a
// Content-Length.
const bodyBufSize = 8 << 10

var headerPool = sync.Pool{New: func() any { return make(http.Header) }}

var bodyBufPool = sync.Pool{New: func() any { b := make([]byte, 0, bodyBufSize); return &b }}

// responseWriter is a stream's http.ResponseWriter and http.Flusher.
type responseWriter struct {
	st     *stream
	header http.Header
	status int
	// wroteHeader: WriteHeader was called (or implied); sentHeader: the
	// HEADERS frame is written.
	wroteHeader, sentHeader bool
	buf                     *[]byte
	written                 int64
	declLen                 int64 // the Content-Length sent, -1 if none
	trailers                []string
	done                    bool
	// autoLen is the Content-Length the server adds to a response
	// written whole when the handler returned, -1 for none.
	autoLen int
}

var (
	_ http.ResponseWriter = (*responseWriter)(nil)
	_ http.Flusher        = (*responseWriter)(nil)
)

func (rw *responseWriter) Header() http.Header { return rw.header }

// WriteHeader records the status; the head is sent with the first
// write, flush or the handler's return. 1xx statuses (but 101) are sent at
// once as informational responses.
func (rw *responseWriter) WriteHeader(code int) {
	if rw.done || rw.wroteHeader {
		return
	}
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code))
	}
	if code >= 100 && code <= 199 {
		if code != http.StatusSwitchingProtocols {
			rw.writeInformational(code)
		}
		return
	}
	rw.wroteHeader = true
	rw.status = code
	rw.declLen = -1
	if v := rw.header["Content-Length"]; len(v) > 0 {
		if n, err := strconv.ParseUint(v[0], 10, 63); err == nil {
			rw.declLen = int64(n)
		}
	}
}

func bodyAllowed(status int) bool {
	return !(status >= 100 && status <= 199 || status == 204 || status == 304)
}

func (rw *responseWriter) Write(p []byte) (int, error) {
	if rw.done {
		return 0, errors.New("h2: Write after the handler returned")
	}
	if !rw.wroteHeader {
		rw.WriteHeader(http.StatusOK)
	}
	if !bodyAllowed(rw.status) {
		return 0, http.ErrBodyNotAllowed
	}
	if rw.st.req.Method == http.MethodHead {
		return len(p), nil
	}
	if rw.declLen >= 0 && rw.written+int64(len(p)) > rw.declLen {
		return 0, http.ErrContentLength
	}
	rw.written += int64(len(p))
	if rw.buf == nil {
		rw.buf = bodyBufPool.Get().(*[]byte)
	}
	b := *rw.buf
	if len(b)+len(p) <= cap(b) {
		*rw.buf = append(b, p...)
		return len(p), nil
	}
	if err := rw.send(b, false); err != nil {
		*rw.buf = b[:0]
		return 0, err
	}
	*rw.buf = b[:0]
	if len(p) < cap(b) {
		*rw.buf = append(b[:0], p...)
		return len(p), nil
	}
	if err := rw.send(p, false); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Flush sends the head and what is buffered.
func (rw *responseWriter) Flush() { rw.FlushError() }

// FlushError is Flush, with its error; http.ResponseController calls it.
func (rw *responseWriter) FlushError() error {
	if rw.done {
		return errors.New("h2: Flush after the handler returned")
	}
	if !rw.wroteHeader {
		rw.WriteHeader(http.StatusOK)
	}
	var b []byte
	if rw.buf != nil {
		b = *rw.buf
	}
	err := rw.send(b, false)
	if rw.buf != nil {
		*rw.buf = (*rw.buf)[:0]
	}
	return err
}

// finish ends the response when the handler returned: the head (with a
// Content-Length when the whole body was buffered), the body, the
// trailers and END_STREAM; then the stream is closed, reset with NO_ERROR
// when the client had not ended its side (RFC 9113 §8.1).
func (rw *responseWriter) finish() {
	if !rw.wroteHeader {
		rw.WriteHeader(http.StatusOK)
	}
	var b []byte
	if rw.buf != nil {
		b = *rw.buf
	}
	rw.autoLen = -1
	if !rw.sentHeader && bodyAllowed(rw.status) && rw.st.req.Method != http.MethodHead {
		if _, ok := rw.header["Content-Length"]; !ok && !rw.hasTrailers() {
			rw.autoLen = len(b)
		}
	}
	// "Connection: close" asks for the connection's end: a graceful
	// GOAWAY once this response is out, as x/net/http2.
	closeConn := false
	for _, v := range rw.header["Connection"] {
		closeConn = closeConn || httpguts.HeaderValuesContainsToken([]string{v}, "close")
	}
	err := rw.send(b, true)
	rw.release()
	st, c := rw.st, rw.st.c
	if closeConn {
		defer c.goAwayGraceful()
	}
	if err != nil {
		st.resetByServer(http2.ErrCodeInternal, err)
		return
	}
	c.mu.Lock()
	open := c.streams[st.id] == st
	stillOpen := open && st.state == stateOpen
	if open {
		c.removeLocked(st)
	}
	c.mu.Unlock()
	st.abort(errStreamClosed)
	if stillOpen {
		c.lockWrite()
		if c.werr == nil && c.bw != nil {
			c.wfr.WriteRSTStream(st.id, http2.ErrCodeNo)
		}
		c.unlockWrite(true)
	}
}

// release gives the body buffer back; the writer is done.
func (rw *responseWriter) release() {
	rw.done = true
	if rw.header != nil {
		// As net/http's, a ResponseWriter's header is not used after the
		// handler returned: the map serves another stream.
		clear(rw.header)
		headerPool.Put(rw.header)
		rw.header = nil
	}
	if rw.buf != nil {
		*rw.buf = (*rw.buf)[:0]
		bodyBufPool.Put(rw.buf)
		rw.buf = nil
	}
}

func (rw *responseWriter) hasTrailers() bool {
	if len(rw.header["Trailer"]) > 0 {
		return true
	}
	for k := range rw.header {
		if strings.HasPrefix(k, http.TrailerPrefix) {
			return true
		}
	}
	return false
}

// send writes the head if it is not sent, then data, then (with end) the
// trailers and END_STREAM, taking flow-control window as it goes: the
// head and a small body leave in one lock hold. A write that waits for
// window longer than WriteTimeout resets the stream.
func (rw *responseWriter) send(data []byte, end bool) error {
	st, c := rw.st, rw.st.c
	var trailers []hpack.HeaderField
	if end {
		if !rw.sentHeader {
			rw.declareTrailers()
		}
		trailers = rw.trailerFields()
	}
	for {
		n := 0
		if len(data) > 0 {
			var err error
			n, err = st.takeSendWindow(len(data), rw.sentHeader)
			if err != nil {
				return err
			}
			if n == 0 {
				// No window: the head goes alone, then the wait.
				c.lockWrite()
				if err := st.checkWritable(); err != nil {
					c.unlockWrite(true)
					return err
				}
				rw.writeHeadLocked(false)
				if err := c.unlockWrite(true); err != nil {
					return err
				}
				continue
			}
		}
		last := n == len(data)
		endNow := end && last
		c.lockWrite()
		if err := st.checkWritable(); err != nil {
			c.unlockWrite(true)
			return err
		}
		headEnds := false
		if !rw.sentHeader {
			headEnds = endNow && len(data) == 0 && trailers == nil
			rw.writeHeadLocked(headEnds)
		}
		if n > 0 || (endNow && !headEnds && trailers == nil) {
			c.writeDataLocked(st.id, data[:n], endNow && trailers == nil)
		}
		if endNow && trailers != nil {
			c.writeHeaderBlockLocked(st.id, c.encodeLocked(trailers...), true)
		}
		if endNow && c.running.Load() > 1 && c.queued.Load() == 0 {
			// The stream's end, while other handlers of the connection
			// run: they may have their responses ready in a moment, and
			// one flush can take them all.
			return c.unlockWriteSoon()
		}
		err := c.unlockWrite(true)
		if err != nil {
			return err
		}
		data = data[n:]
		if last {
			return nil
		}
	}
}

// checkWritable reports why nothing may be written on the stream any
// more; wmu is held.
func (st *stream) checkWritable() error {
	if err := st.c.writeErrLocked(); err != nil {
		return err
	}
	st.c.flowMu.Lock()
	err := st.werr
	st.c.flowMu.Unlock()
	return err
}

// takeSendWindow takes up to want bytes (and a frame at most) of the
// stream's and the connection's send windows. With block, it waits for
// some, WriteTimeout at most; then the stream is reset.
func (st *stream) takeSendWindow(want int, block bool) (int, error) {
	c := st.c
	if m := int(c.peerMaxFrame.Load()); want > m {
		want = m
	}
	for {
		c.flowMu.Lock()
		if st.werr != nil {
			err := st.werr
			c.flowMu.Unlock()
			return 0, err
		}
		n := int64(want)
		if st.sendWin < n {
			n = st.sendWin
		}
		if c.sendWin < n {
			n = c.sendWin
		}
		if n > 0 {
			st.sendWin -= n
			c.sendWin -= n
			c.flowMu.Unlock()
			return int(n), nil
		}
		if !block {
			c.flowMu.Unlock()
			return 0, nil
		}
		if !st.waiting {
			st.waiting = true
			c.waiters = append(c.waiters, st)
		}
		if st.wake == nil {
			st.wake = make(chan struct{}, 1)
		}
		c.flowMu.Unlock()
		if err := st.waitWindow(); err != nil {
			return 0, err
		}
	}
}

// waitWindow waits for a WINDOW_UPDATE (or a SETTINGS) that may open the
// window, WriteTimeout at most.
func (st *stream) waitWindow() error {
	d := st.c.srv.WriteTimeout
	var tc <-chan time.Time
	if d > 0 {
		if st.wtimer == nil {
			st.wtimer = time.NewTimer(d)
		} else {
			st.wtimer.Reset(d)
		}
		tc = st.wtimer.C
	}
	select {
	case <-st.wake:
		if st.wtimer != nil {
			st.wtimer.Stop()
		}
		return nil
	case <-st.ctx.Done():
		if st.wtimer != nil {
			st.wtimer.Stop()
		}
		st.c.flowMu.Lock()
		err := st.werr
		st.c.flowMu.Unlock()
		if err == nil {
			err = st.ctx.Err()
		}
		return err
	case <-tc:
	}
	st.c.srv.countTimeout("write")
	err := fmt.Errorf("h2: response write: %w", os.ErrDeadlineExceeded)
	st.resetByServer(http2.ErrCodeInternal, err)
	return err
}

// writeInformational sends a 1xx response at once.
func (rw *responseWriter) writeInformational(code int) {
	c := rw.st.c
	c.lockWrite()
	if rw.st.checkWritable() == nil {
		b := appendField(c.henc.start(c.hblock), ":status", strconv.Itoa(code))
		for k, vv := range rw.header {
			b = appendWireFieldLocked(b, k, vv)
		}
		c.hblock = b
		c.writeHeaderBlockLocked(rw.st.id, b, false)
	}
	c.unlockWrite(true)
}

// writeContinue answers Expect: 100-continue on the body's first read.
func (rw *responseWriter) writeContinue() {
	c := rw.st.c
	c.lockWrite()
	if rw.st.checkWritable() == nil && !rw.sentHeader {
		c.writeHeaderBlockLocked(rw.st.id, c.encodeLocked(hpack.HeaderField{Name: ":status", Value: "100"}), false)
	}
	c.unlockWrite(true)
}

// declareTrailers records the trailer names the Trailer header declares.
func (rw *responseWriter) declareTrailers() {
	for _, v := range rw.header["Trailer"] {
		for _, k := range strings.Split(v, ",") {
			k = textproto.CanonicalMIMEHeaderKey(textproto.TrimString(k))
			if k != "" && httpguts.ValidTrailerHeader(k) {
				rw.trailers = append(rw.trailers, k)
			}
		}
	}
}

// isTrailer reports whether header key k is sent as a trailer.
func (rw *responseWriter) isTrailer(k string) bool {
	if strings.HasPrefix(k, http.TrailerPrefix) {
		return true
	}
	for _, t := range rw.trailers {
		if t == k {
			return true
		}
	}
	return false
}

// trailerFields are the trailers to send: the declared names' values and
// the http.TrailerPrefix ones, as net/http.
func (rw *responseWriter) trailerFields() []hpack.HeaderField {
	var fields []hpack.HeaderField
	for _, k := range rw.trailers {
		fields = appendWireField(fields, k, rw.header[k])
	}
	for k, vv := range rw.header {
		if !strings.HasPrefix(k, http.TrailerPrefix) {
			continue
		}
		name := textproto.CanonicalMIMEHeaderKey(k[len(http.TrailerPrefix):])
		if httpguts.ValidTrailerHeader(name) {
			fields = appendWireField(fields, name, vv)
		}
	}
	return fields
}

// wireName is a field name as it goes on the wire (lower case), and
// whether it may: a name that is not a token is dropped with its values.
func wireName(name string) (string, bool) {
	lk := lowerHeader(name)
	return lk, validWireName(lk)
}

// appendWireField appends to fields name's values that may go on the
// wire (wireName; each invalid value is dropped).
func appendWireField(fields []hpack.HeaderField, name string, values []string) []hpack.HeaderField {
	lk, ok := wireName(name)
	if !ok {
		return fields
	}
	for _, v := range values {
		if httpguts.ValidHeaderFieldValue(v) {
			fields = append(fields, hpack.HeaderField{Name: lk, Value: v})
		}
	}
	return fields
}

// appendWireFieldLocked appends to the header block b the encoding of what
// appendWireField would append, without a slice of fields; wmu is held.
func appendWireFieldLocked(b []byte, name string, values []string) []byte {
	lk, ok := wireName(name)
	if !ok {
		return b
	}
	for _, v := range values {
		if httpguts.ValidHeaderFieldValue(v) {
			b = appendField(b, lk, v)
		}
	}
	return b
}

// writeHeadLocked encodes and writes the response head; wmu is held.
func (rw *responseWriter) writeHeadLocked(endStream bool) {
	c := rw.st.c
	rw.sentHeader = true
	if len(rw.trailers) == 0 {
		rw.declareTrailers()
	}
	b := appendField(c.henc.start(c.hblock), ":status", statusString(rw.status))
	for k, vv := range rw.header {
		switch k {
		case "Connection", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding", "Upgrade":
			continue
		}
		if !rw.isTrailer(k) {
			b = appendWireFieldLocked(b, k, vv)
		}
	}
	if rw.autoLen >= 0 {
		b = appendField(b, "content-length", strconv.Itoa(rw.autoLen))
	}
	if _, ok := rw.header["Date"]; !ok {
		b = appendField(b, "date", httphead.Date())
	}
	c.hblock = b
	c.writeHeaderBlockLocked(rw.st.id, b, endStream)
}

// encodeLocked encodes fields as a header block of their own and returns
// it; wmu is held.
func (c *conn) encodeLocked(fields ...hpack.HeaderField) []byte {
	b := c.henc.start(c.hblock)
	for _, f := range fields {
		b = appendField(b, f.Name, f.Value)
	}
	c.hblock = b
	return b
}

// writeHeaderBlockLocked writes a header block as HEADERS and as many
// CONTINUATION frames as the client's frame size needs; wmu is held.
func (c *conn) writeHeaderBlockLocked(id uint32, block []byte, endStream bool) {
	if c.werr != nil || c.bw == nil {
		return
	}
	max := int(c.peerMaxFrame.Load())
	first := block
	if len(first) > max {
		first = first[:max]
	}
	block = block[len(first):]
	c.wfr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: first, EndStream: endStream, EndHeaders: len(block) == 0})
	for len(block) > 0 {
		frag := block
		if len(frag) > max {
			frag = frag[:max]
		}
		block = block[len(frag):]
		c.wfr.WriteContinuation(id, len(block) == 0, frag)
	}
}

// writeDataLocked writes one DATA frame straight into the buffer (no copy
// into the framer's); wmu is held.
func (c *conn) writeDataLocked(id uint32, data []byte, endStream bool) {
	if c.werr != nil || c.bw == nil {
		return
	}
	h := &c.frameHeader
	n := len(data)
	h[0], h[1], h[2] = byte(n>>16), byte(n>>8), byte(n)
	h[3] = byte(http2.FrameData)
	// The header is reused: the flags of the previous frame are cleared.
	h[4] = 0
	if endStream {
		h[4] = byte(http2.FlagDataEndStream)
	}
	h[5], h[6], h[7], h[8] = byte(id>>24), byte(id>>16), byte(id>>8), byte(id)
	c.bw.Write(h[:])
	c.bw.Write(data)
}

func validWireName(v string) bool {
	if v == "" {
		return false
	}
	for i := 0; i < len(v); i++ {
		b := v[i]
		if !httpguts.IsTokenRune(rune(b)) || 'A' <= b && b <= 'Z' {
			return false
		}
	}
	return true
}

var statusStrings [600]string

func init() {
	for i := 100; i < len(statusStrings); i++ {
		statusStrings[i] = strconv.Itoa(i)
	}
}

func statusString(code int) string {
	if code >= 100 && code < len(statusStrings) {
		return statusStrings[code]
	}
	return strconv.Itoa(code)
}
