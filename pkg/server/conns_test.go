package server_test

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"runtime"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/edgectl/edgectl/pkg/server"
)

// TestMaxConnections: connections beyond MaxConnections are closed
// before their handshake and counted; the connections held (here, ones
// that never start their handshake) are counted open; once some close, an
// ordinary client is served again.
func TestMaxConnections(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	r := start(t, f, func(c *server.Config) { c.MaxConnections = 3 })
	var held []net.Conn
	for i := 0; i < 3; i++ {
		c, err := net.Dial("tcp", r.srv.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		held = append(held, c)
	}
	eventually(t, "three connections open", func() bool { return r.metric(t, "edgectl_client_connections") == "3" })
	client := r.client(f, "open.test", nil, false)
	if status, _, _, err := get(client, "open.test", "/"); err == nil {
		t.Fatalf("a fourth connection was served (%d)", status)
	}
	// Refused before the handshake: the client's TLS sees the connection
	// end, with no alert from the edge.
	conn, err := tls.Dial("tcp", r.srv.Addr().String(), &tls.Config{ServerName: "open.test", RootCAs: f.root.Pool()})
	if err == nil {
		conn.Close()
		t.Fatal("a TLS handshake over the limit succeeded")
	}
	if got := r.metric(t, "edgectl_client_connections_refused_total"); got == "" || got == "0" {
		t.Fatalf("refused connections counted: %q", got)
	}
	if got := r.metric(t, `edgectl_tls_handshake_errors_total{reason="client_closed"}`); got != "" {
		t.Fatalf("refused connections counted as handshake errors: %q", got)
	}
	held[0].Close()
	held[1].Close()
	h1 := r.client(f, "open.test", nil, false)
	eventually(t, "an ordinary client served again", func() bool {
		status, _, _, err := get(h1, "open.test", "/")
		return err == nil && status == 200
	})
	h1.CloseIdleConnections()
	eventually(t, "the HTTP/1.1 connection no longer counted", func() bool { return r.metric(t, "edgectl_client_connections") == "1" })
	// HTTP/2 connections count too, until they close.
	h2 := r.client(f, "open.test", nil, true)
	if status, _, _, err := get(h2, "open.test", "/"); err != nil || status != 200 {
		t.Fatalf("HTTP/2 under the limit: %d %v", status, err)
	}
	eventually(t, "the HTTP/2 connection counted", func() bool { return r.metric(t, "edgectl_client_connections") == "2" })
	h2.CloseIdleConnections()
	eventually(t, "the HTTP/2 connection no longer counted", func() bool { return r.metric(t, "edgectl_client_connections") == "1" })
}

// TestDefaultLimits pins the documented defaults.
func TestDefaultLimits(t *testing.T) {
	t.Parallel()
	if server.DefaultMaxConnections != 10000 || server.DefaultMaxConcurrentStreams != 100 {
		t.Fatalf("defaults: max connections %d, max concurrent streams %d", server.DefaultMaxConnections, server.DefaultMaxConcurrentStreams)
	}
}

// ctxWatcher is a handler that reports when a request starts and whether
// its context was cancelled (within 10 s) or not.
type ctxWatcher struct {
	started chan string
	ended   chan string
}

func newCtxWatcher() *ctxWatcher {
	return &ctxWatcher{started: make(chan string, 4), ended: make(chan string, 4)}
}

func (h *ctxWatcher) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.started <- r.Proto
	select {
	case <-r.Context().Done():
		h.ended <- "cancelled"
	case <-time.After(10 * time.Second):
		h.ended <- "still running after 10s"
	}
}

func wait(t *testing.T, ch <-chan string, want string, limit time.Duration) {
	t.Helper()
	select {
	case got := <-ch:
		if got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	case <-time.After(limit):
		t.Fatalf("nothing within %v, want %q", limit, want)
	}
}

// TestCancelOnClientGone: the handler's context is cancelled promptly
// when an HTTP/1.1 client closes its connection, and when an HTTP/2
// client resets the stream or closes the connection.
func TestCancelOnClientGone(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	h := newCtxWatcher()
	r := start(t, f, func(c *server.Config) { server.ServeWith(c, h) })

	conn, err := tls.Dial("tcp", r.srv.Addr().String(), &tls.Config{ServerName: "open.test", RootCAs: f.root.Pool(), NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(conn, "GET /slow HTTP/1.1\r\nHost: open.test\r\n\r\n")
	wait(t, h.started, "HTTP/1.1", 5*time.Second)
	conn.Close()
	wait(t, h.ended, "cancelled", time.Second)

	c := dialH2(t, f, r, "open.test")
	c.request(1, "GET", "open.test", "/slow", true)
	wait(t, h.started, "HTTP/2.0", 5*time.Second)
	c.fr.WriteRSTStream(1, http2.ErrCodeCancel)
	wait(t, h.ended, "cancelled", time.Second)

	c.request(3, "GET", "open.test", "/slow", true)
	wait(t, h.started, "HTTP/2.0", 5*time.Second)
	c.conn.Close()
	wait(t, h.ended, "cancelled", time.Second)
}

// TestCancelAfterShutdownGrace: requests still running when the shutdown
// timeout ends have their contexts cancelled, on HTTP/1.1 and HTTP/2, and
// the server stops.
func TestCancelAfterShutdownGrace(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	h := newCtxWatcher()
	r := start(t, f, func(c *server.Config) {
		c.ShutdownTimeout = 300 * time.Millisecond
		server.ServeWith(c, h)
	})
	conn, err := tls.Dial("tcp", r.srv.Addr().String(), &tls.Config{ServerName: "open.test", RootCAs: f.root.Pool(), NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "GET /slow HTTP/1.1\r\nHost: open.test\r\n\r\n")
	wait(t, h.started, "HTTP/1.1", 5*time.Second)
	c := dialH2(t, f, r, "open.test")
	c.request(1, "GET", "open.test", "/slow", true)
	wait(t, h.started, "HTTP/2.0", 5*time.Second)

	began := time.Now()
	r.cancel()
	for i := 0; i < 2; i++ {
		wait(t, h.ended, "cancelled", 2*time.Second)
	}
	if took := time.Since(began); took < 250*time.Millisecond {
		t.Fatalf("requests cancelled after %v, before the shutdown timeout", took)
	}
	select {
	case err := <-r.done:
		close(r.done) // for the cleanup's stop
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return")
	}
}

// TestIdleConnectionsPark: a kept-alive HTTP/1.1 or HTTP/2 connection
// idle for 250 ms parks (edgectl_client_connections_parked), and still
// serves its next request, on the same connection, as the same verified
// client; once the client closes it, it is counted neither parked nor
// open.
func TestIdleConnectionsPark(t *testing.T) {
	t.Parallel()
	if runtime.GOOS != "linux" {
		t.Skip("connections park on Linux only")
	}
	for _, h2 := range []bool{false, true} {
		t.Run(map[bool]string{false: "HTTP/1.1", true: "HTTP/2"}[h2], func(t *testing.T) {
			t.Parallel()
			testIdleConnectionPark(t, h2)
		})
	}
}

func testIdleConnectionPark(t *testing.T, h2 bool) {
	f := newFixture(t)
	r := start(t, f, nil)
	client := r.client(f, "api.test", f.valid, h2)
	var reused []bool
	fetch := func() {
		t.Helper()
		trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { reused = append(reused, i.Reused) }}
		req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "GET", "https://api.test/", nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.ProtoMajor != map[bool]int{false: 1, true: 2}[h2] {
			t.Fatalf("%s %d, want 200 for the verified client", resp.Proto, resp.StatusCode)
		}
	}
	if got := r.metric(t, "edgectl_client_connections_parked"); got != "0" {
		t.Fatalf("parked before any connection: %q", got)
	}
	fetch()
	eventually(t, "the idle connection parked", func() bool { return r.metric(t, "edgectl_client_connections_parked") == "1" })
	fetch()
	if len(reused) != 2 || !reused[1] {
		t.Fatalf("connection reuse %v: the request after the park was not on the parked connection", reused)
	}
	eventually(t, "parked again", func() bool { return r.metric(t, "edgectl_client_connections_parked") == "1" })
	client.CloseIdleConnections()
	eventually(t, "the closed connection no longer counted", func() bool {
		return r.metric(t, "edgectl_client_connections_parked") == "0" && r.metric(t, "edgectl_client_connections") == "0"
	})
}
