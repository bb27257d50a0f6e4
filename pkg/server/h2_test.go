package server_test

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/edgectl/edgectl/pkg/server"
)

// h2client is a raw HTTP/2 client: a TLS connection with ALPN h2 and a
// framer, to send what net/http's client never would.
type h2client struct {
	t    *testing.T
	conn *tls.Conn
	fr   *http2.Framer
	hbuf bytes.Buffer
	enc  *hpack.Encoder
}

// dialH2 connects to the edge as sni, sends the preface and the given
// settings, and reads the server's settings.
func dialH2(t *testing.T, f *fixture, r *running, sni string, settings ...http2.Setting) *h2client {
	t.Helper()
	conn, err := tls.Dial("tcp", r.srv.Addr().String(), &tls.Config{ServerName: sni, RootCAs: f.root.Pool(), NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if p := conn.ConnectionState().NegotiatedProtocol; p != "h2" {
		t.Fatalf("ALPN chose %q", p)
	}
	c := &h2client{t: t, conn: conn, fr: http2.NewFramer(conn, conn)}
	c.enc = hpack.NewEncoder(&c.hbuf)
	c.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	if _, err := io.WriteString(conn, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	if err := c.fr.WriteSettings(settings...); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	fr, err := c.fr.ReadFrame()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := fr.(*http2.SettingsFrame); !ok {
		t.Fatalf("first frame %v, want SETTINGS", fr)
	}
	c.fr.WriteSettingsAck()
	return c
}

// headerBlock encodes a request's header fields.
func (c *h2client) headerBlock(method, authority, path string, extra ...string) []byte {
	c.hbuf.Reset()
	for _, hf := range []hpack.HeaderField{{Name: ":method", Value: method}, {Name: ":scheme", Value: "https"}, {Name: ":authority", Value: authority}, {Name: ":path", Value: path}} {
		c.enc.WriteField(hf)
	}
	for i := 0; i+1 < len(extra); i += 2 {
		c.enc.WriteField(hpack.HeaderField{Name: extra[i], Value: extra[i+1]})
	}
	return bytes.Clone(c.hbuf.Bytes())
}

// request opens stream id with a complete header block; endStream when
// it has no body.
func (c *h2client) request(id uint32, method, authority, path string, endStream bool, extra ...string) {
	c.t.Helper()
	if err := c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: c.headerBlock(method, authority, path, extra...), EndStream: endStream, EndHeaders: true}); err != nil {
		c.t.Fatal(err)
	}
}

// frameEvent is what the server sent: a stream reset, a GOAWAY, the
// connection's end, or response headers and data.
type frameEvent struct {
	kind   string // "rst", "goaway", "closed", "headers", "data"
	stream uint32
	code   http2.ErrCode
	status string
	data   int
	end    bool
	at     time.Duration // since until began
	when   time.Time
}

// until reads frames (acknowledging pings and settings) until stop
// returns true for an event or limit passes; it returns the events.
func (c *h2client) until(limit time.Duration, stop func(frameEvent) bool) []frameEvent {
	c.t.Helper()
	began := time.Now()
	c.conn.SetReadDeadline(began.Add(limit))
	var evs []frameEvent
	for {
		fr, err := c.fr.ReadFrame()
		now := time.Now()
		ev := frameEvent{at: now.Sub(began), when: now}
		if err != nil {
			var ne interface{ Timeout() bool }
			if errors.As(err, &ne) && ne.Timeout() {
				return evs
			}
			ev.kind = "closed"
			evs = append(evs, ev)
			return evs
		}
		switch fr := fr.(type) {
		case *http2.RSTStreamFrame:
			ev.kind, ev.stream, ev.code = "rst", fr.StreamID, fr.ErrCode
		case *http2.GoAwayFrame:
			ev.kind, ev.code = "goaway", fr.ErrCode
		case *http2.MetaHeadersFrame:
			ev.kind, ev.stream, ev.status, ev.end = "headers", fr.StreamID, fr.PseudoValue("status"), fr.StreamEnded()
		case *http2.DataFrame:
			ev.kind, ev.stream, ev.data, ev.end = "data", fr.StreamID, len(fr.Data()), fr.StreamEnded()
		case *http2.PingFrame:
			if !fr.IsAck() {
				c.fr.WritePing(true, fr.Data)
			}
			continue
		default:
			continue
		}
		evs = append(evs, ev)
		if stop(ev) {
			return evs
		}
	}
}

// servedMeanwhile checks that an ordinary HTTP/2 client is served.
func servedMeanwhile(t *testing.T, f *fixture, r *running) {
	t.Helper()
	c := r.client(f, "open.test", nil, true)
	resp, err := c.Get("https://open.test/ordinary")
	if err != nil {
		t.Fatalf("an ordinary client was not served: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.ProtoMajor != 2 || !strings.HasPrefix(string(body), "origin /ordinary") {
		t.Fatalf("an ordinary client got %s %d %q", resp.Proto, resp.StatusCode, body)
	}
}

// TestHTTP2StalledBody: a stream whose body stops arriving is reset after
// the body timeout, its request's context cancelled; the edge's origin
// exchange ends; an ordinary client is served meanwhile.
func TestHTTP2StalledBody(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	r := start(t, f, func(c *server.Config) { c.BodyTimeout = 300 * time.Millisecond })
	c := dialH2(t, f, r, "open.test")
	c.request(1, "POST", "open.test", "/upload", false, "content-length", "1000")
	c.fr.WriteData(1, false, []byte("first bytes"))
	sent := time.Now()
	servedMeanwhile(t, f, r)
	evs := c.until(5*time.Second, func(ev frameEvent) bool { return ev.kind == "rst" || ev.kind == "closed" })
	last := evs[len(evs)-1:]
	if len(last) == 0 || last[0].kind != "rst" || last[0].stream != 1 {
		t.Fatalf("a stalled body was not reset within 5s: %+v", evs)
	}
	if at := last[0].when.Sub(sent); at < 250*time.Millisecond || at > 3*time.Second {
		t.Fatalf("reset after %v, want about the body timeout (300ms)", at)
	}
	eventually(t, "the reset counted", func() bool { return r.metric(t, `edgectl_http2_timeouts_total{timeout="body"}`) == "1" })
	servedMeanwhile(t, f, r)
}

// TestHTTP2TricklingBodyWithinTimeout: a body whose bytes come more often
// than the body timeout (the timeout is between two reads, as nginx's
// client_body_timeout) is served to its end.
func TestHTTP2TricklingBodyWithinTimeout(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	r := start(t, f, func(c *server.Config) { c.BodyTimeout = 500 * time.Millisecond })
	c := dialH2(t, f, r, "open.test")
	c.request(1, "POST", "open.test", "/upload", false, "content-length", "5")
	for i := 0; i < 5; i++ {
		time.Sleep(150 * time.Millisecond)
		c.fr.WriteData(1, i == 4, []byte("x"))
	}
	evs := c.until(5*time.Second, func(ev frameEvent) bool { return ev.end || ev.kind == "rst" || ev.kind == "closed" })
	if len(evs) == 0 || evs[0].kind != "headers" || evs[0].status != "200" || evs[len(evs)-1].kind == "rst" {
		t.Fatalf("a body trickled within the timeout: %+v", evs)
	}
}

// TestHTTP2ZeroWindow: a client that advertises a zero receive window
// stalls the response's writes; the stream is reset after the write
// timeout (the response headers, not flow-controlled, do arrive), and an
// ordinary client is served meanwhile.
func TestHTTP2ZeroWindow(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	r := start(t, f, func(c *server.Config) { c.WriteTimeout = 300 * time.Millisecond })
	c := dialH2(t, f, r, "open.test", http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
	c.request(1, "GET", "open.test", "/zero-window", true)
	sent := time.Now()
	servedMeanwhile(t, f, r)
	evs := c.until(5*time.Second, func(ev frameEvent) bool { return ev.kind == "rst" || ev.kind == "closed" })
	var data int
	for _, ev := range evs {
		data += ev.data
	}
	last := evs[len(evs)-1]
	if last.kind != "rst" || last.stream != 1 || data != 0 {
		t.Fatalf("a zero-window stream was not reset within 5s (data frames: %d bytes): %+v", data, evs)
	}
	if at := last.when.Sub(sent); at < 250*time.Millisecond || at > 3*time.Second {
		t.Fatalf("reset after %v, want about the write timeout (300ms)", at)
	}
	eventually(t, "the reset counted", func() bool { return r.metric(t, `edgectl_http2_timeouts_total{timeout="write"}`) == "1" })
	servedMeanwhile(t, f, r)
}

// TestHTTP2SlowReaderLargeResponse: a client that opens its window only a
// little at a time, but more often than the write timeout, gets a large
// response to its end: the timeout is between two writes, not for the
// whole response.
func TestHTTP2SlowReaderLargeResponse(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	const size, window = 128 << 10, 16 << 10
	r := start(t, f, func(c *server.Config) {
		c.WriteTimeout = 400 * time.Millisecond
		server.ServeWith(c, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", strconv.Itoa(size))
			chunk := bytes.Repeat([]byte("x"), 8<<10)
			for i := 0; i < size/len(chunk); i++ {
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
		}))
	})
	c := dialH2(t, f, r, "open.test", http2.Setting{ID: http2.SettingInitialWindowSize, Val: window})
	c.request(1, "GET", "open.test", "/large", true)
	// The window opens 16 KiB at a time, every 150 ms.
	got, began := 0, time.Now()
	for time.Since(began) < 10*time.Second {
		evs := c.until(time.Second, func(ev frameEvent) bool { return ev.kind == "data" || ev.kind == "rst" || ev.kind == "closed" })
		if len(evs) == 0 {
			continue
		}
		ev := evs[len(evs)-1]
		if ev.kind == "rst" || ev.kind == "closed" {
			t.Fatalf("a slow reader was cut off after %d bytes: %+v", got, ev)
		}
		got += ev.data
		if ev.end {
			break
		}
		if ev.data > 0 {
			time.Sleep(150 * time.Millisecond)
			c.fr.WriteWindowUpdate(1, uint32(ev.data))
			c.fr.WriteWindowUpdate(0, uint32(ev.data))
		}
	}
	if got != size {
		t.Fatalf("a slow reader got %d of %d bytes", got, size)
	}
	if n := r.metric(t, `edgectl_http2_timeouts_total{timeout="write"}`); n != "0" {
		t.Fatalf("write timeouts counted: %s", n)
	}
}

// TestHTTP2ClientNotReading: a client that opens its windows wide and
// then reads nothing fills the connection; the stalled write resets the
// stream, and the connection, on which nothing can be written any more,
// is closed: the client reads what was buffered, then the end.
func TestHTTP2ClientNotReading(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	const size = 64 << 20
	handlerDone := make(chan error, 1)
	r := start(t, f, func(c *server.Config) {
		c.WriteTimeout = 300 * time.Millisecond
		server.ServeWith(c, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			chunk := bytes.Repeat([]byte("x"), 64<<10)
			var err error
			for i := 0; i < size/len(chunk) && err == nil; i++ {
				_, err = w.Write(chunk)
			}
			handlerDone <- err
		}))
	})
	c := dialH2(t, f, r, "open.test", http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1<<31 - 1})
	c.fr.WriteWindowUpdate(0, 1<<31-1-65535)
	c.request(1, "GET", "open.test", "/large", true)
	select {
	case err := <-handlerDone:
		if err == nil {
			t.Fatal("the handler wrote the whole response to a client that reads nothing")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the handler's write was still stalled after 5s")
	}
	eventually(t, "the connection closed", func() bool { return r.metric(t, "edgectl_client_connections") == "0" })
	c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := io.Copy(io.Discard, c.conn)
	if ne, ok := err.(interface{ Timeout() bool }); ok && ne.Timeout() || n >= size {
		t.Fatalf("read %d bytes then %v: the connection was not closed", n, err)
	}
}

// TestHTTP2HeaderTimeout: a connection that completes the handshake and
// the preface but sends no request, or trickles an endless header block
// of empty CONTINUATION frames, is closed after the header timeout.
func TestHTTP2HeaderTimeout(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	r := start(t, f, func(c *server.Config) { c.HeaderTimeout = 500 * time.Millisecond })
	dialed := time.Now()
	silent := dialH2(t, f, r, "open.test")
	trickler := dialH2(t, f, r, "open.test")
	trickler.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: trickler.headerBlock("GET", "open.test", "/"), EndHeaders: false})
	go func() {
		for i := 0; i < 100; i++ {
			if trickler.fr.WriteContinuation(1, false, nil) != nil {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	for name, c := range map[string]*h2client{"silent": silent, "trickling CONTINUATION": trickler} {
		evs := c.until(5*time.Second, func(ev frameEvent) bool { return ev.kind == "closed" })
		if len(evs) == 0 || evs[len(evs)-1].kind != "closed" || evs[len(evs)-1].when.Sub(dialed) > 3*time.Second {
			t.Fatalf("%s connection not closed by the header timeout: %+v", name, evs)
		}
	}
	eventually(t, "the timeouts counted", func() bool { return r.metric(t, `edgectl_http2_timeouts_total{timeout="header"}`) == "2" })
	servedMeanwhile(t, f, r)
	// A connection that made its request in time is not closed by it.
	c := dialH2(t, f, r, "open.test")
	c.request(1, "GET", "open.test", "/", true)
	evs := c.until(time.Second, func(ev frameEvent) bool { return ev.kind == "closed" })
	if len(evs) == 0 || evs[0].status != "200" || evs[len(evs)-1].kind == "closed" {
		t.Fatalf("a connection with a request: %+v", evs)
	}
}

// TestHTTP2IdleTimeout: a connection with no open stream is closed after
// the idle timeout, with a GOAWAY.
func TestHTTP2IdleTimeout(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	r := start(t, f, func(c *server.Config) { c.IdleTimeout = 400 * time.Millisecond })
	c := dialH2(t, f, r, "open.test")
	c.request(1, "GET", "open.test", "/", true)
	evs := c.until(3*time.Second, func(ev frameEvent) bool { return ev.kind == "closed" })
	var goaway bool
	for _, ev := range evs {
		goaway = goaway || ev.kind == "goaway" && ev.code == http2.ErrCodeNo
	}
	if len(evs) < 2 || evs[0].status != "200" || !goaway || evs[len(evs)-1].kind != "closed" {
		t.Fatalf("an idle connection was not closed with GOAWAY within 3s: %+v", evs)
	}

	// A later header block trickled in empty CONTINUATION frames opens no
	// stream: the connection is idle all the same.
	c = dialH2(t, f, r, "open.test")
	c.request(1, "GET", "open.test", "/", true)
	if evs := c.until(3*time.Second, func(ev frameEvent) bool { return ev.end }); len(evs) == 0 || evs[0].status != "200" {
		t.Fatalf("first request: %+v", evs)
	}
	c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: c.headerBlock("GET", "open.test", "/"), EndHeaders: false})
	go func() {
		for i := 0; i < 100; i++ {
			if c.fr.WriteContinuation(3, false, nil) != nil {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	evs = c.until(4*time.Second, func(ev frameEvent) bool { return ev.kind == "closed" })
	if len(evs) == 0 || evs[len(evs)-1].kind != "closed" {
		t.Fatalf("a trickled header block kept the connection open: %+v", evs)
	}
}

// blocker is a handler that counts its requests and the most running at
// once, and blocks until released, whatever its context says.
type blocker struct {
	started, running, most atomic.Int64
	release                chan struct{}
}

func (b *blocker) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b.started.Add(1)
	n := b.running.Add(1)
	for {
		m := b.most.Load()
		if n <= m || b.most.CompareAndSwap(m, n) {
			break
		}
	}
	<-b.release
	b.running.Add(-1)
}

// TestHTTP2RapidReset: a client that opens streams and resets them at
// once (CVE-2023-44487) gets no more handlers running than
// MaxConcurrentStreams, and its connection is closed with
// ENHANCE_YOUR_CALM once it has queued four times as many; the defence is
// counted; ordinary clients are served.
func TestHTTP2RapidReset(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	b := &blocker{release: make(chan struct{})}
	defer close(b.release)
	const streams = 10
	r := start(t, f, func(c *server.Config) {
		c.MaxConcurrentStreams = streams
		server.ServeWith(c, b)
	})
	c := dialH2(t, f, r, "open.test")
	var sent atomic.Int64
	go func() {
		for id := uint32(1); id < 2000; id += 2 {
			if c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: c.headerBlock("GET", "open.test", "/"), EndStream: true, EndHeaders: true}) != nil ||
				c.fr.WriteRSTStream(id, http2.ErrCodeCancel) != nil {
				return
			}
			sent.Add(1)
		}
	}()
	evs := c.until(5*time.Second, func(ev frameEvent) bool { return ev.kind == "closed" })
	var calm bool
	for _, ev := range evs {
		calm = calm || ev.kind == "goaway" && ev.code == http2.ErrCodeEnhanceYourCalm
	}
	if !calm || evs[len(evs)-1].kind != "closed" {
		t.Fatalf("rapid resets did not close the connection with ENHANCE_YOUR_CALM: %+v", evs)
	}
	if got := b.started.Load(); got > streams {
		t.Fatalf("%d handlers started for reset streams, more than MaxConcurrentStreams %d", got, streams)
	}
	if got := r.metric(t, `edgectl_http2_errors_total{type="conn_enhance_your_calm_too_many_early_resets"}`); got != "1" {
		t.Fatalf("rapid-reset defence counted %q times", got)
	}
	t.Logf("the client sent %d streams and resets; %d handlers started; connection closed with ENHANCE_YOUR_CALM", sent.Load(), b.started.Load())
}

// TestHTTP2ContinuationFlood: a header block that never ends, sent as
// CONTINUATION frames full of header fields (the CVE-2024-27316 class),
// closes the connection once it exceeds the header limit: the edge reads
// no more than about twice MaxHeaderBytes of it and no request starts.
func TestHTTP2ContinuationFlood(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	const maxHeader = 16 << 10
	r := start(t, f, func(c *server.Config) { c.MaxHeaderBytes = maxHeader })
	c := dialH2(t, f, r, "open.test")
	c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: c.headerBlock("GET", "open.test", "/"), EndHeaders: false})
	var written atomic.Int64
	stop := make(chan struct{})
	go func() {
		var enc bytes.Buffer
		e := hpack.NewEncoder(&enc)
		for i := 0; written.Load() < 16<<20; i++ {
			select {
			case <-stop:
				return
			default:
			}
			enc.Reset()
			for enc.Len() < 4<<10 {
				e.WriteField(hpack.HeaderField{Name: "x-flood-" + strconv.Itoa(i), Value: strings.Repeat("v", 200), Sensitive: true})
			}
			if c.fr.WriteContinuation(1, false, enc.Bytes()) != nil {
				return
			}
			written.Add(int64(enc.Len()))
			time.Sleep(time.Millisecond)
		}
	}()
	evs := c.until(10*time.Second, func(ev frameEvent) bool { return ev.kind == "goaway" || ev.kind == "closed" })
	close(stop)
	atEnd := written.Load()
	if len(evs) == 0 || (evs[len(evs)-1].kind != "goaway" && evs[len(evs)-1].kind != "closed") {
		t.Fatalf("a CONTINUATION flood of %d bytes was not refused: %+v", atEnd, evs)
	}
	// The limit as the http2 server applies it, with its slack and the
	// fragment in flight, and some frames the client wrote meanwhile.
	if atEnd > 8*maxHeader+64<<10 {
		t.Fatalf("the connection ended only after %d bytes of header block (limit %d)", atEnd, maxHeader)
	}
	if log := r.access.String(); log != "" {
		t.Fatalf("the flooded request was served: %s", log)
	}
	t.Logf("connection ended (%s) after the client had written %d bytes of CONTINUATION", evs[len(evs)-1].kind, atEnd)
	servedMeanwhile(t, f, r)
}
