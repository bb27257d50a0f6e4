package h2_test

// Adversarial tests: each attacks the server as an outside client would,
// with raw frames (x/net/http2's Framer over TLS on 127.0.0.1) or an
// ordinary HTTP/2 client, and fails when the defence it names is missing.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/edgectl/edgectl/pkg/server/h2"
)

// heapInUse is the live heap after a collection.
func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// TestAttackBodyBufferBounded: a client uploading a large body as fast
// as the window lets it, to a handler that reads in small pieces a
// little slower, never lets the handler drain the stream's buffer. The
// buffer must stay bounded by the window (1 MiB), not grow with what was
// already read: without the compaction of consumed bytes, a 48 MiB upload
// held the whole 48 MiB (and more in append's copies).
func TestAttackBodyBufferBounded(t *testing.T) {
	const size = 48 << 20
	var peak atomic.Uint64
	base := heapInUse()
	addr := serve(t, &h2.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		buf := make([]byte, 32<<10)
		var n int64
		next := int64(4 << 20)
		for {
			m, err := r.Body.Read(buf)
			n += int64(m)
			if n >= next {
				next += 4 << 20
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				if ms.HeapInuse > peak.Load() {
					peak.Store(ms.HeapInuse)
				}
			}
			if err != nil {
				break
			}
			time.Sleep(100 * time.Microsecond)
		}
		fmt.Fprint(w, n)
	})})
	body := io.LimitReader(zeroReader{}, size)
	res, err := client(t, addr).Post("https://"+addr+"/up", "application/octet-stream", body)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if string(got) != fmt.Sprint(size) {
		t.Fatalf("the handler read %s bytes, want %d", got, size)
	}
	t.Logf("heap in use: %d KiB before, %d KiB at most during the upload", base>>10, peak.Load()>>10)
	if p := peak.Load(); p > base+16<<20 {
		t.Fatalf("the heap grew from %d MiB to %d MiB while a %d MiB body was read through a 1 MiB window", base>>20, p>>20, size>>20)
	}
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// TestAttackPaddedEmptyDataFlood: DATA frames that carry no data but
// padding are empty frames as much as unpadded ones (CVE-2019-9518, the
// "empty frames flood"): they serve no request and cost the server a
// frame's work each. They must count toward the flood bound as empty DATA
// does, whatever their padding (which is still flow-controlled).
func TestAttackPaddedEmptyDataFlood(t *testing.T) {
	t.Parallel()
	srv, n := counted(&h2.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.Copy(io.Discard, r.Body) })})
	addr := serve(t, srv)
	for _, pad := range []int{0, 1, 200} {
		t.Run(fmt.Sprintf("pad %d", pad), func(t *testing.T) {
			c := dialRaw(t, addr)
			c.headers(1, false, ":method", "POST", ":scheme", "https", ":authority", "h2.test", ":path", "/")
			padding := make([]byte, pad)
			go func() {
				for i := 0; i < 20000; i++ {
					if c.fr.WriteDataPadded(1, false, nil, padding) != nil {
						return
					}
				}
			}()
			evs := c.read(10*time.Second, func(ev event) bool { return isEnd(ev) || ev.kind == "rst" })
			if ev := last(evs); ev.kind != "goaway" || ev.code != http2.ErrCodeEnhanceYourCalm {
				t.Fatalf("20,000 DATA frames with %d bytes of padding and no data: %+v", pad, ev)
			}
		})
	}
	if got := n.get("conn_ENHANCE_YOUR_CALM_flood"); got != 3 {
		t.Fatalf("floods counted %d times, want 3", got)
	}
}

// TestAttackNegativeSendWindow: a client that lowers
// SETTINGS_INITIAL_WINDOW_SIZE after the server used a stream's window
// makes that window negative (RFC 9113 §6.9.2); the server must send
// nothing until WINDOW_UPDATEs bring it above zero, and then only what is
// above zero. A server that clamped the window at zero would send 150
// bytes after the WINDOW_UPDATE of 150 below, not 50.
func TestAttackNegativeSendWindow(t *testing.T) {
	t.Parallel()
	const size = 1000
	_, c := windowed(t, size, 100)
	got := 0
	readData := func(stop func(event) bool) {
		t.Helper()
		for _, ev := range c.read(300*time.Millisecond, stop) {
			if ev.stream == 1 {
				got += len(ev.data)
			}
			if ev.kind == "rst" || isEnd(ev) {
				t.Fatalf("stream 1 ended: %+v", ev)
			}
		}
	}
	readData(func(ev event) bool { return ev.end })
	if got != 100 {
		t.Fatalf("with a stream window of 100 the server sent %d bytes", got)
	}
	// 100 used of 100; the initial window drops to 0: the window is -100.
	c.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
	c.fr.WriteWindowUpdate(1, 150)
	readData(func(ev event) bool { return ev.end })
	if got != 150 {
		t.Fatalf("window -100, then a WINDOW_UPDATE of 150: the server sent %d bytes in all, want 150", got)
	}
	c.fr.WriteWindowUpdate(1, size)
	evs := c.read(time.Second, func(ev event) bool { return ev.end || ev.kind == "rst" || isEnd(ev) })
	for _, ev := range evs {
		got += len(ev.data)
	}
	if got != size || !last(evs).end {
		t.Fatalf("the server sent %d of %d bytes: %+v", got, size, last(evs))
	}
}

// TestAttackZeroWindowHeadOfLine: a client that never opens one stream's
// window (head-of-line blocking by a client, or by the edge's own slow
// consumer) must not stall the other streams of the connection: the
// stalled handler waits for window without holding the connection's
// write lock or its window.
func TestAttackZeroWindowHeadOfLine(t *testing.T) {
	t.Parallel()
	addr := serve(t, &h2.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/big" {
			w.Write(make([]byte, 256<<10))
			return
		}
		io.WriteString(w, "small")
	})})
	c := dialRaw(t, addr, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
	c.get(1, "/big")
	time.Sleep(50 * time.Millisecond)
	for i := uint32(0); i < 5; i++ {
		id := 3 + 2*i
		c.get(id, "/small")
		c.fr.WriteWindowUpdate(id, 100)
		var body []byte
		evs := c.read(2*time.Second, func(ev event) bool {
			if ev.stream == 1 && ev.kind == "data" && len(ev.data) > 0 {
				t.Errorf("stream 1 got DATA with a zero window")
			}
			if ev.stream == id {
				body = append(body, ev.data...)
			}
			return ev.stream == id && ev.end || isEnd(ev)
		})
		if string(body) != "small" || !last(evs).end {
			t.Fatalf("stream %d while stream 1 waits for window: %q %+v", id, body, last(evs))
		}
	}
	c.fr.WriteWindowUpdate(1, 1<<20)
	c.fr.WriteWindowUpdate(0, 1<<20)
	n, frames := 0, 0
	evs := c.read(3*time.Second, func(ev event) bool {
		if ev.stream == 1 && ev.kind == "data" {
			n += len(ev.data)
			frames++
		}
		return ev.stream == 1 && ev.end || ev.kind == "rst" || isEnd(ev)
	})
	if ev := last(evs); n != 256<<10 || !ev.end {
		t.Fatalf("stream 1, its window opened: %d bytes in %d frames, then %s %d end=%v", n, frames, ev.kind, ev.stream, ev.end)
	}
}

// TestAttackFrameAbuse: frames a hostile client sends out of order or
// out of range, not in TestValidation. Each case names what x/net/http2's
// server does (and RFC 9113 asks).
func TestAttackFrameAbuse(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	addr := serve(t, &h2.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hold" {
			w.WriteHeader(200)
			w.(http.Flusher).Flush()
			select {
			case <-release:
			case <-r.Context().Done():
			}
			return
		}
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, "ok")
	})})
	req := []string{":method", "GET", ":scheme", "https", ":authority", "h2.test", ":path", "/"}
	tests := []struct {
		name string
		send func(c *rawClient) uint32 // returns the stream whose outcome counts
		want string
	}{
		{"RST_STREAM on stream 0", func(c *rawClient) uint32 {
			c.conn.Write([]byte{0, 0, 4, 3, 0, 0, 0, 0, 0, 0, 0, 0, 8})
			return 1
		}, "goaway PROTOCOL_ERROR"},
		{"RST_STREAM of the wrong length", func(c *rawClient) uint32 {
			c.headers(1, false, req...)
			c.conn.Write([]byte{0, 0, 3, 3, 0, 0, 0, 0, 1, 0, 0, 8})
			return 1
		}, "goaway FRAME_SIZE_ERROR"},
		{"connection WINDOW_UPDATE of 0", func(c *rawClient) uint32 { c.fr.WriteWindowUpdate(0, 0); return 1 }, "goaway PROTOCOL_ERROR"},
		{"stream WINDOW_UPDATE of 0", func(c *rawClient) uint32 {
			c.get(1, "/hold")
			c.read(time.Second, func(ev event) bool { return ev.kind == "headers" })
			c.fr.WriteWindowUpdate(1, 0)
			return 1
		}, "rst PROTOCOL_ERROR"},
		{"unknown frame type ignored", func(c *rawClient) uint32 {
			c.fr.WriteRawFrame(0xfa, 0xff, 0, []byte("extension"))
			c.fr.WriteRawFrame(0xfb, 0, 1, []byte("on an idle stream"))
			c.get(1, "/")
			c.fr.WriteRawFrame(0xfa, 0, 1, []byte("on an open stream"))
			return 1
		}, "status 200"},
		{"unknown SETTINGS ignored", func(c *rawClient) uint32 {
			c.fr.WriteSettings(http2.Setting{ID: 0x99, Val: 1 << 31}, http2.Setting{ID: 0xffff, Val: 0})
			c.get(1, "/")
			return 1
		}, "status 200"},
		{"SETTINGS_INITIAL_WINDOW_SIZE over 2^31-1", func(c *rawClient) uint32 {
			c.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 31})
			return 1
		}, "goaway FLOW_CONTROL_ERROR"},
		{"SETTINGS_MAX_FRAME_SIZE over 2^24-1", func(c *rawClient) uint32 {
			c.fr.WriteSettings(http2.Setting{ID: http2.SettingMaxFrameSize, Val: 1 << 24})
			return 1
		}, "goaway PROTOCOL_ERROR"},
		{"SETTINGS on a stream", func(c *rawClient) uint32 {
			c.conn.Write([]byte{0, 0, 0, 4, 0, 0, 0, 0, 1})
			return 1
		}, "goaway PROTOCOL_ERROR"},
		{"SETTINGS of a length not a multiple of 6", func(c *rawClient) uint32 {
			c.conn.Write([]byte{0, 0, 5, 4, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0})
			return 1
		}, "goaway FRAME_SIZE_ERROR"},
		{"PING of 7 bytes", func(c *rawClient) uint32 {
			c.conn.Write([]byte{0, 0, 7, 6, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7})
			return 1
		}, "goaway FRAME_SIZE_ERROR"},
		{"a stream ID used again after its stream ended", func(c *rawClient) uint32 {
			c.get(1, "/")
			c.read(time.Second, func(ev event) bool { return ev.end })
			c.get(1, "/")
			return 1
		}, "goaway PROTOCOL_ERROR"},
		{"HEADERS on a stream the client reset", func(c *rawClient) uint32 {
			c.get(1, "/hold")
			c.read(time.Second, func(ev event) bool { return ev.kind == "headers" })
			c.fr.WriteRSTStream(1, http2.ErrCodeCancel)
			c.get(1, "/")
			return 1
		}, "goaway PROTOCOL_ERROR"},
		{"DATA on a stream the client reset", func(c *rawClient) uint32 {
			c.headers(1, false, ":method", "POST", ":scheme", "https", ":authority", "h2.test", ":path", "/hold")
			c.read(time.Second, func(ev event) bool { return ev.kind == "headers" })
			c.fr.WriteRSTStream(1, http2.ErrCodeCancel)
			c.fr.WriteData(1, false, []byte("late"))
			return 1
		}, "rst STREAM_CLOSED"},
		{"PRIORITY depending on itself, on an open stream", func(c *rawClient) uint32 {
			c.get(1, "/hold")
			c.read(time.Second, func(ev event) bool { return ev.kind == "headers" })
			c.fr.WritePriority(1, http2.PriorityParam{StreamDep: 1, Weight: 3})
			return 1
		}, "rst PROTOCOL_ERROR"},
		{"PRIORITY of the wrong length", func(c *rawClient) uint32 {
			c.conn.Write([]byte{0, 0, 4, 2, 0, 0, 0, 0, 1, 0, 0, 0, 0})
			return 1
		}, "goaway FRAME_SIZE_ERROR"}, // x/net's framer: a connection error
		{"HEADERS then DATA past its padding", func(c *rawClient) uint32 {
			c.headers(1, false, ":method", "POST", ":scheme", "https", ":authority", "h2.test", ":path", "/")
			// Pad length 10 in a 5-byte payload.
			c.conn.Write([]byte{0, 0, 5, 0, 0x8, 0, 0, 0, 1, 10, 'a', 'b', 'c', 'd'})
			return 1
		}, "goaway PROTOCOL_ERROR"},
		{"a frame between HEADERS and its CONTINUATION", func(c *rawClient) uint32 {
			c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: c.block(":method", "GET"), EndStream: true})
			c.fr.WritePing(false, [8]byte{})
			return 1
		}, "goaway PROTOCOL_ERROR"},
		{"CONTINUATION on another stream", func(c *rawClient) uint32 {
			c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: c.block(":method", "GET"), EndStream: true})
			c.fr.WriteContinuation(3, true, c.block(":path", "/"))
			return 1
		}, "goaway PROTOCOL_ERROR"},
		{"the largest stream ID, then a smaller one", func(c *rawClient) uint32 {
			c.get(1<<31-1, "/")
			c.read(time.Second, func(ev event) bool { return ev.end })
			c.get(3, "/")
			return 3
		}, "goaway PROTOCOL_ERROR"},
		{"GOAWAY from the client: the stream in flight is served", func(c *rawClient) uint32 {
			c.headers(1, false, ":method", "POST", ":scheme", "https", ":authority", "h2.test", ":path", "/")
			c.fr.WriteGoAway(0, http2.ErrCodeNo, nil)
			c.fr.WriteData(1, true, []byte("body"))
			return 1
		}, "status 200"},
		{"GOAWAY from the client: a later stream is not served", func(c *rawClient) uint32 {
			c.fr.WriteGoAway(0, http2.ErrCodeNo, nil)
			c.get(1, "/")
			return 1
		}, "goaway NO_ERROR"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := dialRaw(t, addr)
			c.fr.AllowIllegalWrites = true
			id := tt.send(c)
			got := c.outcome(id)
			if got == "goaway NO_ERROR" && strings.HasPrefix(tt.want, "status") {
				// The server's graceful GOAWAY answering the client's:
				// the stream in flight still ends.
				got = c.outcome(id)
			}
			if got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// TestAttackMultiplexedResponsesComplete: large and small responses
// interleaved on one connection, read by an ordinary client (x/net's),
// each arrive whole. The DATA frame header the connection reuses kept
// the END_STREAM flag of the last stream that ended, so a large response
// written after a small one ended was cut after its first frame, looking
// complete to the client (TestAttackZeroWindowHeadOfLine shows it frame
// by frame).
func TestAttackMultiplexedResponsesComplete(t *testing.T) {
	t.Parallel()
	const big = 300 << 10
	addr := serve(t, &h2.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/small" {
			io.WriteString(w, "s")
			return
		}
		chunk := bytes.Repeat([]byte("b"), big/3)
		for i := 0; i < 3; i++ {
			w.Write(chunk)
			w.(http.Flusher).Flush()
		}
	})})
	cl := client(t, addr)
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := 0; i < 40; i++ {
		path, want := "/small", 1
		if i%2 == 0 {
			path, want = "/big", big
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := cl.Get("https://" + addr + path)
			if err != nil {
				errs <- err
				return
			}
			defer res.Body.Close()
			b, err := io.ReadAll(res.Body)
			if err != nil || len(b) != want {
				errs <- fmt.Errorf("%s: %d bytes of %d (%v)", path, len(b), want, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// h2Goroutines returns the stacks of goroutines that serve a connection
// or a stream of package h2 (idle pooled workers are not counted: they
// wait for the next stream, and exit after 10 s).
func h2Goroutines() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		for _, fn := range []string{"h2.(*conn).", "h2.(*stream).", "h2.(*responseWriter).", "h2.(*requestBody).", "h2.(*Server).ServeConn"} {
			if strings.Contains(g, "pkg/server/h2."+fn[3:]) {
				out = append(out, g)
				break
			}
		}
	}
	return out
}

// TestAttackGoroutinesReleased: a client that opens streams in every
// state a handler can wait in — reading a body that never comes, writing
// into a zero window, waiting for the request's context (and more streams,
// refused over MaxConcurrentStreams), writing to a client that reads
// nothing — and a
// header block left in the middle of its CONTINUATION frames — then drops
// the connection, leaves nothing behind: every handler returns, and no
// goroutine of the connection or its streams remains. No timeout is set,
// so only the connection's end can release them.
func TestAttackGoroutinesReleased(t *testing.T) {
	var running, done atomic.Int32
	srv := &h2.Server{MaxConcurrentStreams: 4, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		running.Add(1)
		defer done.Add(1)
		switch r.URL.Path {
		case "/body":
			io.Copy(io.Discard, r.Body)
		case "/write":
			w.Write(make([]byte, 4<<20))
		case "/ctx":
			<-r.Context().Done()
		}
	})}
	addr := serve(t, srv)
	post := func(c *rawClient, id uint32, path string) {
		c.headers(id, false, ":method", "POST", ":scheme", "https", ":authority", "h2.test", ":path", path)
	}
	var conns []*rawClient
	// Streams waiting for a body, window and context; two more refused.
	for i := 0; i < 3; i++ {
		c := dialRaw(t, addr, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
		post(c, 1, "/body")
		post(c, 3, "/write")
		post(c, 5, "/ctx")
		post(c, 7, "/ctx")
		post(c, 9, "/ctx")
		post(c, 11, "/ctx")
		conns = append(conns, c)
	}
	// A client that reads nothing of a large response, all windows open.
	c := dialRaw(t, addr, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1<<31 - 1})
	c.fr.WriteWindowUpdate(0, 1<<31-1-65535)
	post(c, 1, "/write")
	conns = append(conns, c)
	// A header block that never ends.
	c = dialRaw(t, addr)
	c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: c.block(":method", "GET"), EndHeaders: false})
	c.fr.WriteContinuation(1, false, c.block(":path", "/"))
	conns = append(conns, c)

	eventually(t, "handlers started", func() bool { return running.Load() == 3*4+1 })
	time.Sleep(100 * time.Millisecond) // the large response fills the socket buffers
	if n := len(h2Goroutines()); n < 3*4+1+len(conns) {
		t.Fatalf("%d goroutines of h2 while %d handlers and %d connections run", n, running.Load(), len(conns))
	}
	for _, c := range conns {
		c.conn.NetConn().Close()
	}
	eventually(t, "connections closed", func() bool { return srv.Open() == 0 })
	eventually(t, "handlers returned", func() bool { return done.Load() == running.Load() })
	if running.Load() != 3*4+1 {
		t.Fatalf("%d handlers ran, want %d", running.Load(), 3*4+1)
	}
	var left []string
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if left = h2Goroutines(); len(left) == 0 {
			return
		}
	}
	t.Fatalf("%d goroutines of h2 left after the connections closed; the first:\n%s", len(left), left[0])
}

// requestSummary is what a handler sees of a request, in one string.
func requestSummary(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	var b strings.Builder
	fmt.Fprintf(&b, "method=%q host=%q url=%q uri=%q cl=%d body=%q err=%v\n", r.Method, r.Host, r.URL.String(), r.RequestURI, r.ContentLength, body, err != nil)
	keys := make([]string, 0, len(r.Header))
	for k := range r.Header {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "header %s=%q\n", k, r.Header[k])
	}
	keys = keys[:0]
	for k := range r.Trailer {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "trailer %s=%q\n", k, r.Trailer[k])
	}
	if r.TLS != nil {
		fmt.Fprintf(&b, "tls sni=%q\n", r.TLS.ServerName)
	} else {
		b.WriteString("tls none\n")
	}
	io.WriteString(w, b.String())
}

// TestAttackRequestAsXNetSeesIt: hostile but well-formed requests — split
// cookies, another domain's :authority on this connection, Host without
// :authority, conflicting and invalid Content-Lengths, a Content-Length
// with no body, :scheme http over TLS, trailers (declared or not, named
// like the edge's identity headers), odd paths, Expect, TE — reach the
// handler exactly as x/net/http2's server gives them (method, Host, URL,
// RequestURI, ContentLength, body and its error, header, trailers, TLS
// state), or are refused the same way. The edge's own checks (identity
// headers stripped, 421 for another domain, framing rewritten) build on
// this view, so any difference here is a difference in what the edge
// decides.
func TestAttackRequestAsXNetSeesIt(t *testing.T) {
	t.Parallel()
	ours := serve(t, &h2.Server{Handler: http.HandlerFunc(requestSummary)})
	theirs := serveXNet(t, http.HandlerFunc(requestSummary))
	base := func(extra ...string) []string {
		return append([]string{":method", "POST", ":scheme", "https", ":authority", "h2.test", ":path", "/p"}, extra...)
	}
	withBody := func(body string, fields ...string) func(c *rawClient) {
		return func(c *rawClient) {
			c.headers(1, false, fields...)
			c.fr.WriteData(1, true, []byte(body))
		}
	}
	noBody := func(fields ...string) func(c *rawClient) {
		return func(c *rawClient) { c.headers(1, true, fields...) }
	}
	tests := []struct {
		name string
		send func(c *rawClient)
	}{
		{"split cookies", noBody(base("cookie", "a=1", "x-a", "1", "cookie", "b=2", "cookie", "c=3")...)},
		{"another domain's authority", noBody(":method", "GET", ":scheme", "https", ":authority", "other.test:443", ":path", "/")},
		{"Host without authority", noBody(":method", "GET", ":scheme", "https", ":path", "/", "host", "other.test")},
		{"CONNECT with userinfo", noBody(":method", "CONNECT", ":authority", "u@h2.test:443")},
		{"CONNECT to another domain", noBody(":method", "CONNECT", ":authority", "other.test:443")},
		{"authority in capitals, with a trailing dot", noBody(":method", "GET", ":scheme", "https", ":authority", "H2.TEST.", ":path", "/")},
		{"authority with a path", noBody(":method", "GET", ":scheme", "https", ":authority", "h2.test/x", ":path", "/")},
		{"authority with percent-encoding", noBody(":method", "GET", ":scheme", "https", ":authority", "h2%2etest", ":path", "/")},
		{"IPv6 authority", noBody(":method", "GET", ":scheme", "https", ":authority", "[::1]:8443", ":path", "/")},
		{"two Content-Lengths, body as the first", withBody("abc", base("content-length", "3", "content-length", "30")...)},
		{"two Content-Lengths, body as the second", withBody("abcdefghij", base("content-length", "3", "content-length", "10")...)},
		{"invalid Content-Length", withBody("abc", base("content-length", "3x")...)},
		{"negative Content-Length", withBody("abc", base("content-length", "-3")...)},
		{"Content-Length and no body", noBody(base("content-length", "5")...)},
		{"body without Content-Length", withBody("abc", base()...)},
		{"scheme http over TLS", noBody(":method", "GET", ":scheme", "http", ":authority", "h2.test", ":path", "/")},
		{"path with dot segments, query and fragment", noBody(":method", "GET", ":scheme", "https", ":authority", "h2.test", ":path", "/a/../b/%2e%2e//c?x=1&y=%20#frag")},
		{"path of two slashes", noBody(":method", "GET", ":scheme", "https", ":authority", "h2.test", ":path", "//admin/x")},
		{"asterisk with GET (x/net accepts it)", noBody(":method", "GET", ":scheme", "https", ":authority", "h2.test", ":path", "*")},
		{"identity header in the request", noBody(base("ssl-client-verify", "SUCCESS", "ssl-client-s-dn", "CN=admin")...)},
		{"Expect 100-continue", withBody("abc", base("expect", "100-continue", "content-length", "3")...)},
		{"TE trailers twice", noBody(base("te", "trailers", "te", "trailers")...)},
		{"values with spaces around", noBody(base("x-a", " v ", "x-b", "\tw")...)},
		{"empty authority, Host set", noBody(":method", "GET", ":scheme", "https", ":authority", "", ":path", "/", "host", "h2.test")},
		{"trailers declared and not", func(c *rawClient) {
			c.headers(1, false, base("trailer", "x-t, Ssl-Client-Verify")...)
			c.fr.WriteData(1, false, []byte("abc"))
			c.headers(1, true, "x-t", "1", "ssl-client-verify", "SUCCESS", "ssl-client-s-dn", "CN=admin", "x-undeclared", "2")
		}},
		{"trailer declaring framing fields", func(c *rawClient) {
			c.headers(1, false, base("trailer", "content-length, transfer-encoding, host")...)
			c.fr.WriteData(1, false, []byte("abc"))
			c.headers(1, true, "content-length", "99")
		}},
		{"trailers after a Content-Length body", func(c *rawClient) {
			c.headers(1, false, base("content-length", "3", "trailer", "x-t")...)
			c.fr.WriteData(1, false, []byte("abc"))
			c.headers(1, true, "x-t", "1")
		}},
	}
	run := func(t *testing.T, addr string, send func(c *rawClient)) string {
		c := dialRaw(t, addr)
		send(c)
		var out strings.Builder
		evs := c.read(3*time.Second, func(ev event) bool {
			return ev.stream == 1 && (ev.end || ev.kind == "rst") || isEnd(ev)
		})
		for _, ev := range evs {
			switch {
			case ev.kind == "headers" && ev.stream == 1:
				fmt.Fprintf(&out, "status %s\n", ev.status)
			case ev.kind == "data" && ev.stream == 1:
				out.Write(ev.data)
			case ev.kind == "rst" || isEnd(ev):
				fmt.Fprintf(&out, "%s %s\n", ev.kind, ev.code)
			}
		}
		return out.String()
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, want := run(t, ours, tt.send), run(t, theirs, tt.send)
			if got != want {
				t.Fatalf("our server:\n%s\nx/net's:\n%s", got, want)
			}
			if testing.Verbose() {
				t.Logf("both:\n%s", got)
			}
		})
	}
}

// TestAttackResetFloodNotReading: a client that sends frames each of which
// the server must answer with RST_STREAM (DATA on a closed stream, the
// "reset flood" of CVE-2019-9514) and never reads the answers cannot make
// the server queue them: the server writes them as it reads, so once the
// socket buffers are full it stops reading, and the connection is closed
// after WriteTimeout. The heap stays flat meanwhile.
func TestAttackResetFloodNotReading(t *testing.T) {
	srv := &h2.Server{WriteTimeout: 500 * time.Millisecond, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	})}
	addr := serve(t, srv)
	base := heapInUse()
	c := dialRaw(t, addr)
	c.get(1, "/")
	if got := c.outcome(1); got != "status 200" {
		t.Fatal(got)
	}
	var sent atomic.Int64
	writeErr := make(chan error, 1)
	go func() {
		for i := 0; i < 2_000_000; i++ {
			if err := c.fr.WriteData(1, false, nil); err != nil {
				writeErr <- err
				return
			}
			sent.Add(1)
		}
		writeErr <- nil
	}()
	var peak uint64
	// It takes about half a million frames to fill the loopback socket
	// buffers: 11 s under -race on a quiet machine, and once over 20 s with
	// both CPUs busy beside the suite. The deadline bounds a server that
	// would never stop reading, not its speed.
	deadline := time.After(60 * time.Second)
	for {
		select {
		case err := <-writeErr:
			if err == nil {
				t.Fatalf("2,000,000 frames eliciting resets were all accepted from a client that reads nothing")
			}
			t.Logf("the client's writes failed after %d frames (%v); heap %d KiB, at most %d KiB", sent.Load(), err, base>>10, peak>>10)
			if peak > base+16<<20 {
				t.Fatalf("the heap grew from %d KiB to %d KiB", base>>10, peak>>10)
			}
			eventually(t, "connection closed", func() bool { return srv.Open() == 0 })
			return
		case <-deadline:
			t.Fatalf("the connection is still open after 60 s; %d frames sent", sent.Load())
		case <-time.After(50 * time.Millisecond):
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
		}
	}
}

// TestAttackPingsKeepNothingAlive: PINGs (answered) neither count as a
// request for the header timeout nor as a stream for the idle timeout: a
// client pinging every 50 ms is still closed by both.
func TestAttackPingsKeepNothingAlive(t *testing.T) {
	t.Parallel()
	const d = 300 * time.Millisecond
	srv, n := counted(&h2.Server{ReadHeaderTimeout: d, IdleTimeout: d, Handler: http.HandlerFunc(requestSummary)})
	addr := serve(t, srv)
	ping := func(c *rawClient) (stop func()) {
		done := make(chan struct{})
		go func() {
			for i := 0; ; i++ {
				select {
				case <-done:
					return
				case <-time.After(50 * time.Millisecond):
				}
				if c.fr.WritePing(false, [8]byte{byte(i)}) != nil {
					return
				}
			}
		}()
		return func() { close(done) }
	}
	for _, tt := range []struct {
		name    string
		request bool
		want    string
	}{
		{"header", false, "closed"},
		{"idle", true, "goaway"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := dialRaw(t, addr)
			if tt.request {
				c.get(1, "/")
				if got := c.outcome(1); got != "status 200" {
					t.Fatal(got)
				}
			}
			began := time.Now()
			defer ping(c)()
			acks := 0
			var evs []event
			for end := time.Now().Add(3 * time.Second); time.Now().Before(end); {
				c.conn.SetReadDeadline(end)
				f, err := c.fr.ReadFrame()
				if err != nil {
					evs = append(evs, event{kind: "closed"})
					break
				}
				if p, ok := f.(*http2.PingFrame); ok && p.IsAck() {
					acks++
				}
				if g, ok := f.(*http2.GoAwayFrame); ok {
					evs = append(evs, event{kind: "goaway", code: g.ErrCode})
					break
				}
			}
			ev := last(evs)
			if ev.kind != tt.want || time.Since(began) > 2*time.Second || acks < 2 {
				t.Fatalf("a client pinging: %+v after %v, %d PINGs answered", ev, time.Since(began), acks)
			}
		})
	}
	if n.get("timeout_header") != 1 || n.get("timeout_idle") != 1 {
		t.Fatalf("timeouts counted: header %d, idle %d", n.get("timeout_header"), n.get("timeout_idle"))
	}
}

// TestAttackWritesAfterResetAndClose: handlers that keep writing and
// flushing while their client resets their streams, while Shutdown
// runs, and after Close, get errors rather than panics, deadlocks or
// data races (run with -race), and all return. Clients that stop reading
// leave writers blocked on their sockets (no WriteTimeout here) holding
// their connection's write lock: Shutdown must still send GOAWAY to the
// other connections and return when its context ends (it sent the
// GOAWAYs one connection after another and blocked on the first stuck
// one, for ever here, for WriteTimeout per stuck connection in the edge).
func TestAttackWritesAfterResetAndClose(t *testing.T) {
	t.Parallel()
	var started, returned atomic.Int32
	srv := &h2.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started.Add(1)
		defer returned.Add(1)
		chunk := make([]byte, 1000)
		rc := http.NewResponseController(w)
		for i := 0; i < 100000; i++ {
			if _, err := w.Write(chunk); err != nil {
				return
			}
			if err := rc.Flush(); err != nil {
				return
			}
			w.Header().Set("X-Late", "header changes after the head are ignored")
		}
		t.Errorf("a handler wrote 100 MB without an error")
	})}
	addr := serve(t, srv)
	var wg sync.WaitGroup
	for k := 0; k < 4; k++ {
		c := dialRaw(t, addr, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 20})
		c.fr.WriteWindowUpdate(0, 1<<30)
		for i := uint32(0); i < 20; i++ {
			c.get(2*i+1, "/")
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Reset the streams one by one as their data arrives;
			// stop reading after half of them.
			reset := map[uint32]bool{}
			c.read(5*time.Second, func(ev event) bool {
				if ev.kind == "data" && !reset[ev.stream] {
					reset[ev.stream] = true
					c.fr.WriteRSTStream(ev.stream, http2.ErrCodeCancel)
				}
				return len(reset) == 10 || isEnd(ev)
			})
		}()
	}
	wg.Wait()
	eventually(t, "handlers started", func() bool { return started.Load() == 80 })
	// An ordinary client, idle on its own connection.
	idle := dialRaw(t, addr)
	goaway := make(chan event, 1)
	go func() { goaway <- last(idle.read(5*time.Second, isEnd)) }()
	time.Sleep(50 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	shut := make(chan error, 1)
	go func() { shut <- srv.Shutdown(ctx) }()
	select {
	case err := <-shut:
		if err == nil {
			t.Fatalf("Shutdown returned nil while handlers were writing to clients that read nothing")
		}
	case <-time.After(2 * time.Second):
		t.Fatalf("Shutdown with a 200 ms context has not returned after 2 s")
	}
	select {
	case ev := <-goaway:
		if ev.kind != "goaway" || ev.code != http2.ErrCodeNo {
			t.Fatalf("the idle connection: %+v", ev)
		}
	case <-time.After(time.Second):
		t.Fatalf("the idle connection got no GOAWAY within 1 s of Shutdown")
	}
	srv.Close()
	eventually(t, "handlers returned", func() bool { return returned.Load() == started.Load() })
	eventually(t, "connections closed", func() bool { return srv.Open() == 0 })
}

// TestAttackPaddingCountsAgainstWindow: padding is flow-controlled (RFC
// 9113 §6.1): a client that fills the 1 MiB window of a stream whose
// handler reads nothing, then sends a frame of padding only, exceeds the
// window; had only the data been counted, padding would be a way to send
// without limit. The padding the server receives within the window is
// given back at once (WINDOW_UPDATE), as it is never read.
func TestAttackPaddingCountsAgainstWindow(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	addr := serve(t, &h2.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})})
	post := []string{":method", "POST", ":scheme", "https", ":authority", "h2.test", ":path", "/"}

	// Padding within the window is given back: 20 frames of 1 byte of
	// data and 256 of padding (with its length byte); the server sends
	// WINDOW_UPDATE once 4 KiB are owed, as x/net.
	c := dialRaw(t, addr)
	c.headers(1, false, post...)
	for i := 0; i < 20; i++ {
		c.fr.WriteDataPadded(1, false, []byte("d"), make([]byte, 255))
	}
	const preface = 1<<20 - 65535 // the server's first connection WINDOW_UPDATE
	var conn, stream uint32
	c.read(time.Second, func(ev event) bool {
		if ev.kind == "window" && ev.stream == 0 {
			conn += ev.incr
		}
		if ev.kind == "window" && ev.stream == 1 {
			stream += ev.incr
		}
		return conn >= preface+4096 && stream >= 4096 || ev.kind == "rst" || isEnd(ev)
	})
	if conn < preface+4096 || conn > preface+20*256 || stream < 4096 || stream > 20*256 {
		t.Fatalf("5,120 bytes of padding: WINDOW_UPDATEs of %d (connection, beyond the preface's) and %d (stream), want 4,096 to 5,120 each", conn-preface, stream)
	}

	// Padding beyond the window is a FLOW_CONTROL_ERROR.
	c = dialRaw(t, addr)
	c.headers(1, false, post...)
	chunk := make([]byte, 16384)
	for i := 0; i < 64; i++ {
		c.fr.WriteData(1, false, chunk)
	}
	c.fr.WriteDataPadded(1, false, nil, make([]byte, 10))
	if got := c.outcome(1); got != "rst FLOW_CONTROL_ERROR" {
		t.Fatalf("padding past a full window: %s", got)
	}
}

// TestAttackIdleConnectionMemory: what an attacker holding many idle
// connections (each after one request) costs the server — heap and
// goroutine stacks — is no more than with x/net/http2's server, measured
// the same way in the same process: the write buffer is given back
// between writes, and there is one goroutine per connection.
func TestAttackIdleConnectionMemory(t *testing.T) {
	const conns = 200
	measure := func(addr string) uint64 {
		inUse := func() uint64 {
			runtime.GC()
			runtime.GC() // and sync.Pool's victim caches
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			return ms.HeapInuse + ms.StackInuse
		}
		before := inUse()
		cs := make([]*rawClient, 0, conns)
		for i := 0; i < conns; i++ {
			c := dialRaw(t, addr)
			c.get(1, "/")
			if got := c.outcome(1); got != "status 200" {
				t.Fatal(got)
			}
			cs = append(cs, c)
		}
		time.Sleep(100 * time.Millisecond)
		after := inUse()
		for _, c := range cs {
			c.conn.Close()
		}
		if after < before {
			return 0
		}
		return (after - before) / conns
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(make([]byte, 20<<10)) })
	ours := measure(serve(t, &h2.Server{Handler: h}))
	theirs := measure(serveXNet(t, h))
	t.Logf("per idle connection, client and server: %d KiB with this server, %d KiB with x/net's", ours>>10, theirs>>10)
	if ours > theirs+theirs/4 {
		t.Fatalf("an idle connection costs %d KiB with this server, %d KiB with x/net's", ours>>10, theirs>>10)
	}
}

// TestAttackHeaderTableSizeZero: a client that allows no HPACK dynamic
// table (SETTINGS_HEADER_TABLE_SIZE 0) must get response header blocks
// that never index into one; a server that ignored the setting would
// send references its decoder refuses (COMPRESSION_ERROR on its side).
func TestAttackHeaderTableSizeZero(t *testing.T) {
	t.Parallel()
	addr := serve(t, &h2.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Repeated", strings.Repeat("v", 100))
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "ok")
	})})
	c := dialRaw(t, addr, http2.Setting{ID: http2.SettingHeaderTableSize, Val: 0})
	c.fr.ReadMetaHeaders = hpack.NewDecoder(0, nil)
	for i := uint32(0); i < 5; i++ {
		id := 2*i + 1
		c.get(id, "/")
		var repeated string
		evs := c.read(2*time.Second, func(ev event) bool {
			if ev.kind == "headers" && ev.stream == id {
				for _, f := range ev.fields {
					if f.Name == "x-repeated" {
						repeated = f.Value
					}
				}
			}
			return ev.stream == id && ev.end || ev.kind == "rst" || ev.kind == "closed" || ev.kind == "goaway"
		})
		if ev := last(evs); !ev.end || len(repeated) != 100 {
			t.Fatalf("response %d with no dynamic table: %s %s, x-repeated of %d bytes", i, ev.kind, ev.code, len(repeated))
		}
	}
}
