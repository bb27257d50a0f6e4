package h1_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/edgectl/edgectl/pkg/server/h1"
)

// serveTLS serves srv over TLS on a loopback listener and returns its
// address.
func serveTLS(t *testing.T, srv *h1.Server) string {
	t.Helper()
	ts := httptest.NewTLSServer(nil)
	cfg := ts.TLS.Clone()
	cfg.NextProtos = nil
	ts.Close()
	if srv.Handler == nil {
		srv.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "path "+r.URL.Path)
		})
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				tc := tls.Server(c, cfg)
				if tc.Handshake() == nil {
					srv.ServeConn(tc)
				} else {
					c.Close()
				}
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); srv.Close() })
	return ln.Addr().String()
}

// heldConn is a client's TCP connection whose writes are held until
// flush, so that several TLS records reach the server in one segment.
type heldConn struct {
	net.Conn
	held bytes.Buffer
	hold bool
}

func (c *heldConn) Write(p []byte) (int, error) {
	if c.hold {
		return c.held.Write(p)
	}
	return c.Conn.Write(p)
}

func (c *heldConn) flush() error {
	c.hold = false
	_, err := c.Conn.Write(c.held.Bytes())
	c.held.Reset()
	return err
}

func dialTLS(t *testing.T, addr string) (*tls.Conn, *heldConn, *bufio.Reader) {
	t.Helper()
	raw, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	hc := &heldConn{Conn: raw}
	c := tls.Client(hc, &tls.Config{ServerName: "example.com", InsecureSkipVerify: true})
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if err := c.Handshake(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, hc, bufio.NewReader(c)
}

func readBody(t *testing.T, br *bufio.Reader, want string) {
	t.Helper()
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("reading the response to %s: %v", want, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != want {
		t.Fatalf("body %q, want %q", body, want)
	}
}

func get(path string) string { return "GET " + path + " HTTP/1.1\r\nHost: example.com\r\n\r\n" }

// TestIdleConnectionHoldsNoBuffers: a connection waiting for its next
// request, before its first one and between two, holds no read or write
// buffer; it takes them again when the request comes.
func TestIdleConnectionHoldsNoBuffers(t *testing.T) {
	t.Parallel()
	srv := &h1.Server{}
	addr := serveTLS(t, srv)
	c, _, br := dialTLS(t, addr)
	held := func(want int) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for srv.Open() != 1 || srv.HoldingBuffers() != want {
			if time.Now().After(deadline) {
				t.Fatalf("%d connections open, %d holding buffers; want 1 and %d", srv.Open(), srv.HoldingBuffers(), want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	held(0)
	for _, path := range []string{"/a", "/b"} {
		io.WriteString(c, get(path))
		readBody(t, br, "path "+path)
		held(0)
	}
}

// TestIdlePipelinedRecords: requests pipelined in separate TLS records
// that reach the server together are all answered, in order, when the
// connection gives its buffers back between them (crypto/tls keeps the
// second record while the first is served) — whether they come at once,
// or once the connection waits on its socket (after 250 ms idle).
func TestIdlePipelinedRecords(t *testing.T) {
	t.Parallel()
	srv := &h1.Server{IdleTimeout: 5 * time.Second, ReadHeaderTimeout: 5 * time.Second}
	addr := serveTLS(t, srv)
	c, hc, br := dialTLS(t, addr)
	for i, pause := range []time.Duration{0, 600 * time.Millisecond, 0} {
		time.Sleep(pause)
		hc.hold = true
		for _, p := range []string{"/1", "/2", "/3"} {
			io.WriteString(c, get(p)) // one record each
		}
		if err := hc.flush(); err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{"/1", "/2", "/3"} {
			readBody(t, br, "path "+p)
		}
		t.Logf("round %d answered", i)
	}
	// A request whose record is split over two segments, the second
	// after the connection started waiting on its socket.
	hc.hold = true
	io.WriteString(c, get("/split"))
	rec := append([]byte(nil), hc.held.Bytes()...)
	hc.held.Reset()
	hc.hold = false
	time.Sleep(400 * time.Millisecond)
	hc.Conn.Write(rec[:7])
	time.Sleep(400 * time.Millisecond)
	hc.Conn.Write(rec[7:])
	readBody(t, br, "path /split")
}

// TestIdleTimeoutsOnSocket: waiting on its socket, an idle connection
// still closes at IdleTimeout (not sooner, not later), and a first
// request's headers are still due ReadHeaderTimeout after the handshake,
// whether its first byte came before or after the connection started
// waiting on its socket.
func TestIdleTimeoutsOnSocket(t *testing.T) {
	t.Parallel()
	t.Run("idle", func(t *testing.T) {
		t.Parallel()
		srv := &h1.Server{IdleTimeout: 900 * time.Millisecond, ReadHeaderTimeout: 5 * time.Second}
		c, _, br := dialTLS(t, serveTLS(t, srv))
		io.WriteString(c, get("/a"))
		readBody(t, br, "path /a")
		start := time.Now()
		_, err := br.ReadByte()
		if took := time.Since(start); err == nil || took < 700*time.Millisecond || took > 3*time.Second {
			t.Fatalf("idle connection ended after %v with %v, want about 900ms and an end of file", took, err)
		}
	})
	for _, first := range []time.Duration{100 * time.Millisecond, time.Second} {
		t.Run("first byte after "+first.String(), func(t *testing.T) {
			t.Parallel()
			srv := &h1.Server{ReadHeaderTimeout: 2 * time.Second, IdleTimeout: 5 * time.Second}
			c, _, br := dialTLS(t, serveTLS(t, srv))
			start := time.Now()
			time.Sleep(first)
			io.WriteString(c, "G")
			// The server refuses the request (or closes) when its
			// header deadline expires: 2s after the handshake.
			br.ReadByte()
			if took := time.Since(start); took < 1800*time.Millisecond || took > 2700*time.Millisecond {
				t.Fatalf("the connection was refused or closed %v after the handshake, want 2s (ReadHeaderTimeout)", took)
			}
		})
	}
}

// TestShutdownClosesConnectionWaitingOnSocket: Shutdown closes a
// connection that has waited on its socket.
func TestShutdownClosesConnectionWaitingOnSocket(t *testing.T) {
	t.Parallel()
	srv := &h1.Server{IdleTimeout: time.Minute, ReadHeaderTimeout: time.Minute}
	c, _, br := dialTLS(t, serveTLS(t, srv))
	io.WriteString(c, get("/a"))
	readBody(t, br, "path /a")
	time.Sleep(600 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if _, err := br.ReadByte(); err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("read after Shutdown: %v, want the connection closed", err)
	}
}

// TestLaterRequestHeaderTimeout: a kept-alive connection's next request
// whose headers do not all arrive with its first bytes has
// ReadHeaderTimeout from then, whether it came while the connection
// waited in crypto/tls's read or on its socket.
func TestLaterRequestHeaderTimeout(t *testing.T) {
	t.Parallel()
	for _, pause := range []time.Duration{50 * time.Millisecond, 600 * time.Millisecond} {
		t.Run("next request after "+pause.String(), func(t *testing.T) {
			t.Parallel()
			srv := &h1.Server{ReadHeaderTimeout: 1200 * time.Millisecond, IdleTimeout: 10 * time.Second}
			c, _, br := dialTLS(t, serveTLS(t, srv))
			io.WriteString(c, get("/a"))
			readBody(t, br, "path /a")
			time.Sleep(pause)
			start := time.Now()
			io.WriteString(c, "GET /b HTTP/1.1\r\nHost: x\r\n")
			br.ReadByte()
			if took := time.Since(start); took < 1000*time.Millisecond || took > 2500*time.Millisecond {
				t.Fatalf("the unfinished request was refused or closed %v after its first bytes, want 1.2s (ReadHeaderTimeout)", took)
			}
		})
	}
}

// TestConnIdle: ConnIdle is called with the connection's context each time
// the connection has waited 250 ms for a request (before its first and
// between two), and not while its requests follow each other sooner.
func TestConnIdle(t *testing.T) {
	t.Parallel()
	type key struct{}
	calls := make(chan any, 16)
	srv := &h1.Server{
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, key{}, "conn")
		},
		ConnIdle: func(ctx context.Context) { calls <- ctx.Value(key{}) },
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Path", r.URL.Path)
			io.WriteString(w, "path "+r.URL.Path)
		}),
	}
	addr := serveTLS(t, srv)
	c, _, br := dialTLS(t, addr)
	called := func(when string) {
		t.Helper()
		select {
		case v := <-calls:
			if v != "conn" {
				t.Fatalf("%s: ConnIdle's context carries %v, want the connection's", when, v)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: ConnIdle not called", when)
		}
	}
	called("before the first request")
	for i := range 5 {
		io.WriteString(c, get("/busy"))
		readBody(t, br, "path /busy")
		if i < 4 {
			time.Sleep(20 * time.Millisecond)
		}
	}
	if n := len(calls); n != 0 {
		t.Fatalf("ConnIdle called %d times between requests 20 ms apart", n)
	}
	called("after the requests")
	select {
	case <-calls:
		t.Fatal("ConnIdle called twice in one idle period")
	case <-time.After(400 * time.Millisecond):
	}
	// The connection let its response header map go while idle: the next
	// response still carries the handler's headers.
	io.WriteString(c, get("/after"))
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.Header.Get("X-Path") != "/after" || string(body) != "path /after" {
		t.Errorf("after the idle period: X-Path %q, body %q", resp.Header.Get("X-Path"), body)
	}
}
