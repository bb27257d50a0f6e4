package h2_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/edgectl/edgectl/pkg/server/h2"
)

// counts records a server's CountError and CountTimeout calls.
type counts struct {
	mu sync.Mutex
	m  map[string]int
}

func (c *counts) add(k string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]int{}
	}
	c.m[k]++
}

func (c *counts) get(k string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[k]
}

// counted returns srv with its hooks recording into a new counts.
func counted(srv *h2.Server) (*h2.Server, *counts) {
	c := &counts{}
	srv.CountError = c.add
	srv.CountTimeout = func(k string) { c.add("timeout_" + k) }
	return srv, c
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("%s: not within 5s", what)
}

// outcome reads until stream id ends (its response's end or a reset) or
// the connection does, and summarises it: "status 200", "rst
// PROTOCOL_ERROR", "goaway FLOW_CONTROL_ERROR", "closed".
func (c *rawClient) outcome(id uint32) string {
	c.t.Helper()
	status := ""
	evs := c.read(3*time.Second, func(ev event) bool {
		if ev.kind == "headers" && ev.stream == id && ev.status != "" && ev.status[0] != '1' {
			status = ev.status
		}
		return ev.stream == id && (ev.kind == "rst" || ev.end && (ev.kind == "headers" || ev.kind == "data")) || isEnd(ev)
	})
	ev := last(evs)
	switch {
	case ev.kind == "rst":
		if status != "" {
			return "status " + status + ", rst " + ev.code.String()
		}
		return "rst " + ev.code.String()
	case ev.kind == "goaway":
		return "goaway " + ev.code.String()
	case ev.kind == "closed":
		return "closed"
	case status != "":
		return "status " + status
	}
	return fmt.Sprintf("nothing: %+v", evs)
}

// TestValidation: RFC 9113 §8's rules for requests, and the frame rules
// of §5 and §6, enforced as x/net/http2's server enforces them. Each case
// would reach the handler (or be answered 200) without its check.
func TestValidation(t *testing.T) {
	t.Parallel()
	addr := serve(t, &h2.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			// Answers after the client's next frames are read.
			io.Copy(io.Discard, r.Body)
			time.Sleep(100 * time.Millisecond)
		}
		echo(w, r)
	})})
	req := func(extra ...string) []string {
		return append([]string{":method", "GET", ":scheme", "https", ":authority", "h2.test", ":path", "/"}, extra...)
	}
	hdr := func(fields ...string) func(c *rawClient) {
		return func(c *rawClient) { c.headers(1, true, fields...) }
	}
	tests := []struct {
		name string
		send func(c *rawClient)
		want string
	}{
		{"ordinary", hdr(req()...), "status 200"},
		{"no method", hdr(":scheme", "https", ":authority", "h2.test", ":path", "/"), "rst PROTOCOL_ERROR"},
		{"no path", hdr(":method", "GET", ":scheme", "https", ":authority", "h2.test"), "rst PROTOCOL_ERROR"},
		{"empty path", hdr(":method", "GET", ":scheme", "https", ":authority", "h2.test", ":path", ""), "rst PROTOCOL_ERROR"},
		{"relative path", hdr(":method", "GET", ":scheme", "https", ":authority", "h2.test", ":path", "a/b"), "rst PROTOCOL_ERROR"},
		{"asterisk path", hdr(":method", "OPTIONS", ":scheme", "https", ":authority", "h2.test", ":path", "*"), "status 200"},
		{"bad scheme", hdr(":method", "GET", ":scheme", "ftp", ":authority", "h2.test", ":path", "/"), "rst PROTOCOL_ERROR"},
		{"unknown pseudo-header", hdr(req(":foo", "x")...), "rst PROTOCOL_ERROR"},
		{"duplicate pseudo-header", hdr(req(":path", "/again")...), "rst PROTOCOL_ERROR"},
		{"response pseudo-header", hdr(req(":status", "200")...), "rst PROTOCOL_ERROR"},
		{"pseudo-header after a regular one", hdr(":method", "GET", ":scheme", "https", "x-a", "1", ":authority", "h2.test", ":path", "/"), "rst PROTOCOL_ERROR"},
		{"extended CONNECT", hdr(req(":protocol", "websocket")...), "rst PROTOCOL_ERROR"},
		{"CONNECT with a path", hdr(":method", "CONNECT", ":authority", "h2.test:443", ":path", "/"), "rst PROTOCOL_ERROR"},
		{"CONNECT without authority", hdr(":method", "CONNECT"), "rst PROTOCOL_ERROR"},
		{"CONNECT", hdr(":method", "CONNECT", ":authority", "h2.test:443"), "status 200"},
		{"uppercase field name", hdr(req("X-Upper", "1")...), "rst PROTOCOL_ERROR"},
		{"field name with a space", hdr(req("x a", "1")...), "rst PROTOCOL_ERROR"},
		{"NUL in a value", hdr(req("x-a", "a\x00b")...), "rst PROTOCOL_ERROR"},
		{"LF in a value", hdr(req("x-a", "a\nb")...), "rst PROTOCOL_ERROR"},
		{"underscore in a name (the edge's own check drops it)", hdr(req("x_a", "1")...), "status 200"},
		{"Connection", hdr(req("connection", "keep-alive")...), "status 400"},
		{"Keep-Alive", hdr(req("keep-alive", "5")...), "status 400"},
		{"Proxy-Connection", hdr(req("proxy-connection", "close")...), "status 400"},
		{"Transfer-Encoding", hdr(req("transfer-encoding", "chunked")...), "status 400"},
		{"Upgrade", hdr(req("upgrade", "h2c")...), "status 400"},
		{"TE gzip", hdr(req("te", "gzip")...), "status 400"},
		{"TE trailers", hdr(req("te", "trailers")...), "status 200"},
		{"Host as authority", hdr(":method", "GET", ":scheme", "https", ":path", "/", "host", "h2.test"), "status 200"},
		{"Host unlike authority", hdr(req("host", "other.test")...), "rst PROTOCOL_ERROR"},
		{"two Hosts", hdr(":method", "GET", ":scheme", "https", ":path", "/", "host", "h2.test", "host", "h2.test"), "rst PROTOCOL_ERROR"},
		{"userinfo in authority", hdr(":method", "GET", ":scheme", "https", ":authority", "u@h2.test", ":path", "/"), "rst PROTOCOL_ERROR"},
		{"invalid authority", hdr(":method", "GET", ":scheme", "https", ":authority", "h2 test", ":path", "/"), "rst PROTOCOL_ERROR"},
		{"self-dependent HEADERS", func(c *rawClient) {
			c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: c.block(req()...), EndStream: true, EndHeaders: true, Priority: http2.PriorityParam{StreamDep: 1}})
		}, "rst PROTOCOL_ERROR"},
		{"PRIORITY accepted and ignored", func(c *rawClient) {
			c.fr.WritePriority(1, http2.PriorityParam{StreamDep: 0, Weight: 200})
			c.fr.WritePriority(7, http2.PriorityParam{StreamDep: 3, Weight: 1})
			c.headers(1, true, req()...)
		}, "status 200"},
		{"self-dependent PRIORITY", func(c *rawClient) { c.fr.WritePriority(1, http2.PriorityParam{StreamDep: 1}) }, "rst PROTOCOL_ERROR"},
		{"body longer than Content-Length", func(c *rawClient) {
			c.headers(1, false, req("content-length", "2")...)
			c.fr.WriteData(1, true, []byte("abc"))
		}, "rst PROTOCOL_ERROR"},
		{"body shorter than Content-Length", func(c *rawClient) {
			c.headers(1, false, req("content-length", "5")...)
			c.fr.WriteData(1, true, []byte("abc"))
		}, "status 400"},
		{"body as long as Content-Length", func(c *rawClient) {
			c.headers(1, false, req("content-length", "3")...)
			c.fr.WriteData(1, true, []byte("abc"))
		}, "status 200"},
		{"DATA after END_STREAM", func(c *rawClient) {
			c.headers(1, false, ":method", "POST", ":scheme", "https", ":authority", "h2.test", ":path", "/slow")
			c.fr.WriteData(1, true, []byte("abc"))
			c.fr.WriteData(1, true, []byte("more"))
		}, "rst STREAM_CLOSED"},
		{"HEADERS after END_STREAM", func(c *rawClient) {
			c.headers(1, false, ":method", "POST", ":scheme", "https", ":authority", "h2.test", ":path", "/slow")
			c.fr.WriteData(1, true, nil)
			c.headers(1, true, "x-trailer", "1")
		}, "rst STREAM_CLOSED"},
		{"trailers without END_STREAM", func(c *rawClient) {
			c.headers(1, false, req()...)
			c.headers(1, false, "x-trailer", "1")
		}, "rst PROTOCOL_ERROR"},
		{"pseudo-header in trailers", func(c *rawClient) {
			c.headers(1, false, req()...)
			c.headers(1, true, ":path", "/")
		}, "rst PROTOCOL_ERROR"},
		{"DATA on an idle stream", func(c *rawClient) { c.fr.WriteData(1, true, []byte("x")) }, "goaway PROTOCOL_ERROR"},
		{"DATA on stream 0", func(c *rawClient) { c.fr.WriteData(0, true, []byte("x")) }, "goaway PROTOCOL_ERROR"},
		{"even stream", func(c *rawClient) { c.headers(2, true, req()...) }, "goaway PROTOCOL_ERROR"},
		{"stream IDs going down", func(c *rawClient) {
			c.headers(5, true, req()...)
			c.headers(3, true, req()...)
			c.headers(1, true, req()...)
		}, "goaway PROTOCOL_ERROR"},
		{"PUSH_PROMISE", func(c *rawClient) {
			c.fr.WritePushPromise(http2.PushPromiseParam{StreamID: 1, PromiseID: 2, BlockFragment: c.block(req()...), EndHeaders: true})
		}, "goaway PROTOCOL_ERROR"},
		{"PING on a stream", func(c *rawClient) {
			// The framer will not write it: by hand.
			c.conn.Write([]byte{0, 0, 8, 6, 0, 0, 0, 0, 1, 1, 2, 3, 4, 5, 6, 7, 8})
		}, "goaway PROTOCOL_ERROR"},
		{"WINDOW_UPDATE on an idle stream", func(c *rawClient) { c.fr.WriteWindowUpdate(1, 1) }, "goaway PROTOCOL_ERROR"},
		{"RST_STREAM on an idle stream", func(c *rawClient) { c.fr.WriteRSTStream(1, http2.ErrCodeCancel) }, "goaway PROTOCOL_ERROR"},
		{"CONTINUATION without HEADERS", func(c *rawClient) { c.fr.WriteContinuation(1, true, c.block(req()...)) }, "goaway PROTOCOL_ERROR"},
		{"SETTINGS ACK never asked for", func(c *rawClient) { c.fr.WriteSettingsAck(); c.fr.WriteSettingsAck() }, "goaway PROTOCOL_ERROR"},
		{"invalid SETTINGS_ENABLE_PUSH", func(c *rawClient) { c.fr.WriteSettings(http2.Setting{ID: http2.SettingEnablePush, Val: 2}) }, "goaway PROTOCOL_ERROR"},
		{"SETTINGS_MAX_FRAME_SIZE too small", func(c *rawClient) { c.fr.WriteSettings(http2.Setting{ID: http2.SettingMaxFrameSize, Val: 100}) }, "goaway PROTOCOL_ERROR"},
		{"frame larger than SETTINGS_MAX_FRAME_SIZE", func(c *rawClient) {
			c.headers(1, false, req()...)
			c.fr.WriteData(1, true, make([]byte, 16385))
		}, "goaway FRAME_SIZE_ERROR"},
		{"HPACK table size above SETTINGS_HEADER_TABLE_SIZE", func(c *rawClient) {
			c.enc.SetMaxDynamicTableSizeLimit(1 << 20)
			c.enc.SetMaxDynamicTableSize(1 << 20)
			c.headers(1, true, req()...)
		}, "goaway COMPRESSION_ERROR"},
		{"HPACK garbage", func(c *rawClient) {
			c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: []byte{0xff, 0xff, 0xff, 0xff}, EndStream: true, EndHeaders: true})
		}, "goaway COMPRESSION_ERROR"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := dialRaw(t, addr)
			c.fr.AllowIllegalWrites = true
			tt.send(c)
			if got := c.outcome(1); got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// TestFirstFrameSettings: a client whose first frame is not SETTINGS is
// refused with GOAWAY PROTOCOL_ERROR.
func TestFirstFrameSettings(t *testing.T) {
	t.Parallel()
	addr := serve(t, &h2.Server{Handler: http.HandlerFunc(echo)})
	conn := dialTLS(t, addr)
	io.WriteString(conn, http2.ClientPreface)
	fr := http2.NewFramer(conn, conn)
	fr.WritePing(false, [8]byte{})
	c := &rawClient{t: t, conn: conn, fr: fr}
	evs := c.read(3*time.Second, isEnd)
	var goaway event
	for _, ev := range evs {
		if ev.kind == "goaway" {
			goaway = ev
		}
	}
	if goaway.kind != "goaway" || goaway.code != http2.ErrCodeProtocol {
		t.Fatalf("a PING first: %+v", evs)
	}
}

// TestSendFlowControl: the response is sent within the client's windows
// (SETTINGS_INITIAL_WINDOW_SIZE, then WINDOW_UPDATE, for the stream and
// the connection), never more.
func TestSendFlowControl(t *testing.T) {
	t.Parallel()
	const size = 100
	addr, c := windowed(t, size, 10)
	got := 0
	readData := func() {
		t.Helper()
		evs := c.read(300*time.Millisecond, func(ev event) bool { return ev.end })
		for _, ev := range evs {
			got += len(ev.data)
		}
	}
	readData()
	if got != 10 {
		t.Fatalf("with a stream window of 10 the server sent %d bytes", got)
	}
	c.fr.WriteWindowUpdate(1, 25)
	readData()
	if got != 35 {
		t.Fatalf("after a WINDOW_UPDATE of 25 the server sent %d bytes in all", got)
	}
	// A larger initial window opens every stream's by the difference.
	c.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 30})
	readData()
	if got != 55 {
		t.Fatalf("after SETTINGS_INITIAL_WINDOW_SIZE 10→30 the server sent %d bytes in all", got)
	}
	c.fr.WriteWindowUpdate(1, 1000)
	readData()
	if got != size {
		t.Fatalf("the server sent %d of %d bytes", got, size)
	}

	// The connection's window bounds all streams together.
	c2 := dialRaw(t, addr, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 20})
	c2.get(1, "/")
	evs := c2.read(time.Second, func(ev event) bool { return ev.end })
	if ev := last(evs); !ev.end {
		t.Fatalf("a wide window: %+v", evs)
	}
}

// TestWindowOverflow: a WINDOW_UPDATE or SETTINGS_INITIAL_WINDOW_SIZE
// that takes a window past 2^31-1 is a FLOW_CONTROL_ERROR: of the
// stream, or of the connection.
func TestWindowOverflow(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	defer close(release)
	addr := serve(t, &h2.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})})
	for _, tt := range []struct {
		name string
		send func(c *rawClient)
		want string
	}{
		{"stream WINDOW_UPDATE", func(c *rawClient) { c.fr.WriteWindowUpdate(1, 1<<31-1) }, "status 200, rst FLOW_CONTROL_ERROR"},
		{"connection WINDOW_UPDATE", func(c *rawClient) { c.fr.WriteWindowUpdate(0, 1<<31-1) }, "goaway FLOW_CONTROL_ERROR"},
		{"SETTINGS_INITIAL_WINDOW_SIZE", func(c *rawClient) {
			c.fr.WriteWindowUpdate(1, 1<<31-1-65535)
			c.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 65536})
		}, "goaway FLOW_CONTROL_ERROR"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := dialRaw(t, addr)
			c.get(1, "/")
			if evs := c.read(3*time.Second, func(ev event) bool { return ev.kind == "headers" }); last(evs).status != "200" {
				t.Fatalf("no response head: %+v", evs)
			}
			tt.send(c)
			got := c.outcome(1)
			if !strings.HasSuffix(tt.want, got) && got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// TestReceiveFlowControl: a client that sends more DATA than its stream
// window (1 MiB, advertised in SETTINGS) has its stream reset with
// FLOW_CONTROL_ERROR; WINDOW_UPDATEs are sent as the handler reads, so a
// body larger than every window goes through.
func TestReceiveFlowControl(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	defer close(release)
	addr := serve(t, &h2.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/read" {
			n, _ := io.Copy(io.Discard, r.Body)
			fmt.Fprint(w, n)
			return
		}
		<-release
	})})
	c := dialRaw(t, addr)
	if w := c.settings[http2.SettingInitialWindowSize]; w != 1<<20 {
		t.Fatalf("advertised stream window %d", w)
	}
	c.headers(1, false, ":method", "POST", ":scheme", "https", ":authority", "h2.test", ":path", "/hold")
	chunk := make([]byte, 16384)
	for i := 0; i < 64; i++ {
		c.fr.WriteData(1, false, chunk)
	}
	c.fr.WriteData(1, false, []byte("x"))
	if got := c.outcome(1); got != "rst FLOW_CONTROL_ERROR" {
		t.Fatalf("a byte past the window: %s", got)
	}

	// 4 MiB through a 1 MiB window, as the handler reads.
	c = dialRaw(t, addr)
	c.headers(1, false, ":method", "POST", ":scheme", "https", ":authority", "h2.test", ":path", "/read")
	var credit atomic.Int64
	credit.Store(1 << 20)
	done := make(chan []event, 1)
	go func() {
		evs := c.read(10*time.Second, func(ev event) bool {
			if ev.kind == "window" && ev.stream == 1 {
				credit.Add(int64(ev.incr))
			}
			return ev.end || ev.kind == "rst" || isEnd(ev)
		})
		done <- evs
	}()
	sent := 0
	for sent < 4<<20 {
		if credit.Load()-int64(sent) < int64(len(chunk)) {
			time.Sleep(time.Millisecond)
			continue
		}
		c.fr.WriteData(1, false, chunk)
		sent += len(chunk)
	}
	c.fr.WriteData(1, true, nil)
	evs := <-done
	var body string
	for _, ev := range evs {
		body += string(ev.data)
	}
	if body != fmt.Sprint(4<<20) {
		t.Fatalf("4 MiB body: %q %+v", body, last(evs))
	}
}

// TestMaxConcurrentStreams: the limit is advertised, and a stream beyond
// it is refused (REFUSED_STREAM: the client may retry it) while the
// others are served.
func TestMaxConcurrentStreams(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	srv, n := counted(&h2.Server{MaxConcurrentStreams: 3, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release })})
	addr := serve(t, srv)
	c := dialRaw(t, addr)
	if got := c.settings[http2.SettingMaxConcurrentStreams]; got != 3 {
		t.Fatalf("advertised SETTINGS_MAX_CONCURRENT_STREAMS %d", got)
	}
	for id := uint32(1); id <= 7; id += 2 {
		c.get(id, "/")
	}
	if got := c.outcome(7); got != "rst REFUSED_STREAM" {
		t.Fatalf("the fourth stream: %s", got)
	}
	close(release)
	ended := map[uint32]string{}
	c.read(3*time.Second, func(ev event) bool {
		if ev.end {
			ended[ev.stream] = ev.kind
		}
		return len(ended) == 3 || isEnd(ev)
	})
	if len(ended) != 3 {
		t.Fatalf("streams 1, 3, 5 ended: %v", ended)
	}
	if got := n.get("stream_REFUSED_STREAM_over_max_streams"); got != 1 {
		t.Fatalf("refusals counted %d times", got)
	}
}

// TestRapidReset: streams opened and reset at once (CVE-2023-44487) start
// no more handlers than MaxConcurrentStreams, and once four times as many
// wait the connection is closed with ENHANCE_YOUR_CALM.
func TestRapidReset(t *testing.T) {
	t.Parallel()
	var started atomic.Int64
	release := make(chan struct{})
	defer close(release)
	srv, n := counted(&h2.Server{MaxConcurrentStreams: 5, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started.Add(1)
		<-release
	})})
	addr := serve(t, srv)
	c := dialRaw(t, addr)
	go func() {
		block := c.block(":method", "GET", ":scheme", "https", ":authority", "h2.test", ":path", "/")
		for id := uint32(1); id < 1000; id += 2 {
			if c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block, EndStream: true, EndHeaders: true}) != nil ||
				c.fr.WriteRSTStream(id, http2.ErrCodeCancel) != nil {
				return
			}
		}
	}()
	evs := c.read(5*time.Second, func(ev event) bool { return ev.kind == "goaway" })
	if ev := last(evs); ev.kind != "goaway" || ev.code != http2.ErrCodeEnhanceYourCalm {
		t.Fatalf("rapid resets: %+v", evs)
	}
	if got := started.Load(); got > 5 {
		t.Fatalf("%d handlers started", got)
	}
	if got := n.get("conn_ENHANCE_YOUR_CALM_too_many_early_resets"); got != 1 {
		t.Fatalf("counted %d times", got)
	}
}

// TestFloods: frames that serve no request — PING, SETTINGS, empty DATA,
// PRIORITY — close the connection with ENHANCE_YOUR_CALM once a client
// has sent 10,000 of them (beyond 10 for each request), rather than
// keeping the server busy answering without bound.
func TestFloods(t *testing.T) {
	t.Parallel()
	srv, n := counted(&h2.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.Copy(io.Discard, r.Body) })})
	addr := serve(t, srv)
	for _, tt := range []struct {
		name string
		send func(c *rawClient, i int) error
	}{
		{"PING", func(c *rawClient, i int) error { return c.fr.WritePing(false, [8]byte{byte(i)}) }},
		{"SETTINGS", func(c *rawClient, i int) error { return c.fr.WriteSettings() }},
		{"empty DATA", func(c *rawClient, i int) error { return c.fr.WriteData(1, false, nil) }},
		{"PRIORITY", func(c *rawClient, i int) error {
			return c.fr.WritePriority(uint32(2*i+3), http2.PriorityParam{StreamDep: 1, Weight: 1})
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := dialRaw(t, addr)
			c.headers(1, false, ":method", "POST", ":scheme", "https", ":authority", "h2.test", ":path", "/")
			go func() {
				for i := 0; i < 20000; i++ {
					if tt.send(c, i) != nil {
						return
					}
				}
			}()
			evs := c.read(10*time.Second, func(ev event) bool { return ev.kind == "goaway" })
			if ev := last(evs); ev.kind != "goaway" || ev.code != http2.ErrCodeEnhanceYourCalm {
				t.Fatalf("a %s flood: %+v", tt.name, last(evs))
			}
		})
	}
	if got := n.get("conn_ENHANCE_YOUR_CALM_flood"); got != 4 {
		t.Fatalf("floods counted %d times", got)
	}

	// A client that pings along with its requests is no flood: 12,000
	// PINGs with 2,000 requests (in batches within the stream limit).
	c := dialRaw(t, addr)
	block := c.block(":method", "GET", ":scheme", "https", ":authority", "h2.test", ":path", "/")
	id := uint32(1)
	for batch := 0; batch < 40; batch++ {
		for i := 0; i < 50; i++ {
			for j := 0; j < 6; j++ {
				c.fr.WritePing(false, [8]byte{byte(j)})
			}
			c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block, EndStream: true, EndHeaders: true})
			id += 2
		}
		ended := 0
		evs := c.read(5*time.Second, func(ev event) bool {
			if ev.end && ev.kind == "headers" {
				ended++
			}
			return ended == 50 || ev.kind == "rst" || isEnd(ev)
		})
		if ended != 50 {
			t.Fatalf("a client pinging with its requests, batch %d: %+v", batch, last(evs))
		}
	}
}

// TestHeaderListLimits: a header list over MaxHeaderBytes is answered
// 431 without reaching the handler; a header block far beyond it, sent
// as CONTINUATION frames (CVE-2024-27316), closes the connection after
// about twice the limit has been read, without buffering it.
func TestHeaderListLimits(t *testing.T) {
	t.Parallel()
	var reached atomic.Int64
	srv, _ := counted(&h2.Server{MaxHeaderBytes: 4 << 10, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached.Add(1) })})
	addr := serve(t, srv)
	c := dialRaw(t, addr)
	if got := c.settings[http2.SettingMaxHeaderListSize]; got != 4<<10+320 {
		t.Fatalf("advertised SETTINGS_MAX_HEADER_LIST_SIZE %d", got)
	}
	var many []string
	for i := 0; i < 10; i++ {
		many = append(many, fmt.Sprintf("x-big-%d", i), strings.Repeat("v", 500))
	}
	c.get(1, "/", many...)
	if got := c.outcome(1); got != "status 431" || reached.Load() != 0 {
		t.Fatalf("a header list over the limit: %s, handler reached %d times", got, reached.Load())
	}
	// One field longer than the whole limit is not even decoded: HPACK
	// refuses the string (COMPRESSION_ERROR), as x/net/http2.
	c = dialRaw(t, addr)
	c.get(1, "/", "x-big", strings.Repeat("v", 5<<10))
	if got := c.outcome(1); got != "goaway COMPRESSION_ERROR" {
		t.Fatalf("a field over the limit: %s", got)
	}

	c = dialRaw(t, addr)
	c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: c.block(":method", "GET", ":scheme", "https", ":authority", "h2.test", ":path", "/"), EndHeaders: false})
	var written atomic.Int64
	go func() {
		var buf bytes.Buffer
		e := hpack.NewEncoder(&buf)
		for i := 0; written.Load() < 16<<20; i++ {
			buf.Reset()
			for buf.Len() < 4<<10 {
				e.WriteField(hpack.HeaderField{Name: fmt.Sprintf("x-flood-%d", i), Value: strings.Repeat("v", 200), Sensitive: true})
			}
			if c.fr.WriteContinuation(1, false, buf.Bytes()) != nil {
				return
			}
			written.Add(int64(buf.Len()))
			time.Sleep(time.Millisecond)
		}
	}()
	evs := c.read(10*time.Second, isEnd)
	if ev := last(evs); ev.kind != "goaway" || ev.code != http2.ErrCodeProtocol {
		t.Fatalf("a CONTINUATION flood: %+v", evs)
	}
	if w := written.Load(); w > 1<<20 {
		t.Fatalf("the connection ended only after %d bytes of header block", w)
	}
}

// TestTimeouts: each timeout ends what it bounds and is counted: a
// connection with no request (header), one with no stream open (idle,
// GOAWAY NO_ERROR), a body that stops (body: the stream is reset), a
// response the client's zero window stalls (write: the head arrives,
// then the reset), and a connection on which nothing can be written.
func TestTimeouts(t *testing.T) {
	t.Parallel()
	const d = 200 * time.Millisecond
	srv, n := counted(&h2.Server{
		ReadHeaderTimeout: d, IdleTimeout: 2 * d, BodyReadTimeout: d, WriteTimeout: d,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch r.URL.Path {
			case "/body":
				_, err := io.Copy(io.Discard, r.Body)
				if err == nil {
					t.Errorf("the body read did not fail")
				}
			case "/large":
				chunk := make([]byte, 64<<10)
				for i := 0; i < 1000; i++ {
					if _, err := w.Write(chunk); err != nil {
						return
					}
				}
				t.Errorf("a client that reads nothing took 64 MB")
			default:
				w.Write([]byte("response"))
			}
		}),
	})
	addr := serve(t, srv)

	t.Run("header", func(t *testing.T) {
		c := dialRaw(t, addr)
		began := time.Now()
		if ev := last(c.read(3*time.Second, isEnd)); ev.kind != "closed" || time.Since(began) > 2*time.Second {
			t.Fatalf("a silent connection: %+v after %v", ev, time.Since(began))
		}
		eventually(t, "counted", func() bool { return n.get("timeout_header") >= 1 })
	})
	t.Run("idle", func(t *testing.T) {
		c := dialRaw(t, addr)
		c.get(1, "/")
		if got := c.outcome(1); got != "status 200" {
			t.Fatal(got)
		}
		evs := c.read(3*time.Second, func(ev event) bool { return ev.kind == "closed" })
		var goaway bool
		for _, ev := range evs {
			goaway = goaway || ev.kind == "goaway" && ev.code == http2.ErrCodeNo
		}
		if !goaway || last(evs).kind != "closed" {
			t.Fatalf("an idle connection: %+v", evs)
		}
		eventually(t, "counted", func() bool { return n.get("timeout_idle") >= 1 })
	})
	t.Run("body", func(t *testing.T) {
		c := dialRaw(t, addr)
		c.headers(1, false, ":method", "POST", ":scheme", "https", ":authority", "h2.test", ":path", "/body")
		c.fr.WriteData(1, false, []byte("some"))
		if got := c.outcome(1); got != "rst INTERNAL_ERROR" {
			t.Fatalf("a stalled body: %s", got)
		}
		eventually(t, "counted", func() bool { return n.get("timeout_body") == 1 })
	})
	t.Run("write", func(t *testing.T) {
		c := dialRaw(t, addr, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
		c.get(1, "/")
		if got := c.outcome(1); got != "status 200, rst INTERNAL_ERROR" {
			t.Fatalf("a zero window: %s", got)
		}
		eventually(t, "counted", func() bool { return n.get("timeout_write") == 1 })
	})
	t.Run("connection write", func(t *testing.T) {
		c := dialRaw(t, addr, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1<<31 - 1})
		c.fr.WriteWindowUpdate(0, 1<<31-1-65535)
		c.get(1, "/large")
		// Read nothing: the server's writes fill the socket buffers, then
		// the connection is closed.
		time.Sleep(1500 * time.Millisecond)
		c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		nread, err := io.Copy(io.Discard, c.conn)
		if ne, ok := err.(interface{ Timeout() bool }); ok && ne.Timeout() {
			t.Fatalf("read %d bytes, then the connection stayed open", nread)
		}
	})
}

// TestUnreadBodies: handlers that never read their request bodies do not
// use up the connection's window: the bodies they left are given back
// when their streams end, and 4 MiB of bodies go through a 1 MiB window.
func TestUnreadBodies(t *testing.T) {
	t.Parallel()
	addr := serve(t, &h2.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The body arrives meanwhile, and waits unread.
		time.Sleep(20 * time.Millisecond)
		w.Write([]byte("ignored"))
	})})
	c := dialRaw(t, addr)
	chunk := make([]byte, 16<<10)
	for i := uint32(0); i < 32; i++ {
		id := 2*i + 1
		c.headers(id, false, ":method", "POST", ":scheme", "https", ":authority", "h2.test", ":path", "/")
		for j := 0; j < 8; j++ {
			c.fr.WriteData(id, j == 7, chunk)
		}
		if got := c.outcome(id); got != "status 200" {
			t.Fatalf("request %d (%d KiB of bodies sent): %s", i, (i+1)*128, got)
		}
	}
}

// TestTooMuchBodyResetFirst: a stream whose DATA exceeds its
// Content-Length is reset before its handler can answer. The handler
// below answers as soon as its body read fails; were the body failed
// before the stream was reset, some of these streams would get its 400
// instead of RST_STREAM.
func TestTooMuchBodyResetFirst(t *testing.T) {
	t.Parallel()
	addr := serve(t, &h2.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusOK)
	})})
	const streams = 50
	for round := 0; round < 20; round++ {
		c := dialRaw(t, addr)
		for i := uint32(0); i < streams; i++ {
			c.headers(2*i+1, false, ":method", "POST", ":scheme", "https", ":authority", "h2.test", ":path", "/", "content-length", "2")
		}
		// The handlers are all waiting on their bodies now.
		time.Sleep(10 * time.Millisecond)
		for i := uint32(0); i < streams; i++ {
			c.fr.WriteData(2*i+1, true, []byte("abc"))
		}
		got := map[uint32]string{}
		c.read(3*time.Second, func(ev event) bool {
			switch {
			case ev.kind == "rst":
				if got[ev.stream] == "" {
					got[ev.stream] = "rst " + ev.code.String()
				}
			case ev.kind == "headers" && ev.status != "":
				got[ev.stream] = "status " + ev.status
			}
			return len(got) == streams || isEnd(ev)
		})
		for i := uint32(0); i < streams; i++ {
			if g := got[2*i+1]; g != "rst PROTOCOL_ERROR" {
				t.Fatalf("round %d: stream %d: got %q, want %q", round, 2*i+1, g, "rst PROTOCOL_ERROR")
			}
		}
		c.conn.Close()
	}
}
