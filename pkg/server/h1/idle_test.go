package h1_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/edgectl/edgectl/internal/park"
	"github.com/edgectl/edgectl/pkg/server/h1"
)

// serveTLS serves srv over TLS on a loopback listener and returns its
// address.
func serveTLS(t *testing.T, srv *h1.Server) string {
	t.Helper()
	return serveTLSDone(t, srv, func(error) {})
}

// serveTLSDone is serveTLS with ServeConnThen's done function, when srv
// has a Parker.
func serveTLSDone(t *testing.T, srv *h1.Server, done func(error)) string {
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
				switch {
				case tc.Handshake() != nil:
					c.Close()
				case srv.Parker != nil:
					srv.ServeConnThen(tc, done)
				default:
					srv.ServeConn(tc)
				}
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); srv.Close() })
	return ln.Addr().String()
}

// waits runs f for both ways an idle connection waits on its socket: on
// its goroutine (ServeConn), and parked without one (ServeConnThen and a
// Parker). f makes its server with mk.
func waits(t *testing.T, f func(t *testing.T, mk func(*h1.Server) *h1.Server)) {
	for _, parked := range []bool{false, true} {
		name := "goroutine"
		if parked {
			name = "parked"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f(t, func(srv *h1.Server) *h1.Server {
				if parked {
					srv.Parker = newParker(t)
				}
				return srv
			})
		})
	}
}

func newParker(t *testing.T) *park.Parker {
	t.Helper()
	p, err := park.New()
	if err != nil {
		t.Skipf("no parker here: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	return p
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
	waits(t, func(t *testing.T, mk func(*h1.Server) *h1.Server) {
		srv := mk(&h1.Server{})
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
	})
}

// TestIdlePipelinedRecords: requests pipelined in separate TLS records
// that reach the server together are all answered, in order, when the
// connection gives its buffers back between them (crypto/tls keeps the
// second record while the first is served) — whether they come at once,
// or once the connection waits on its socket (after 250 ms idle).
func TestIdlePipelinedRecords(t *testing.T) {
	t.Parallel()
	waits(t, func(t *testing.T, mk func(*h1.Server) *h1.Server) {
		srv := mk(&h1.Server{IdleTimeout: 5 * time.Second, ReadHeaderTimeout: 5 * time.Second})
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
	})
}

// TestIdleTimeoutsOnSocket: waiting on its socket, an idle connection
// still closes at IdleTimeout (not sooner, not later), and a first
// request's headers are still due ReadHeaderTimeout after the handshake,
// whether its first byte came before or after the connection started
// waiting on its socket.
func TestIdleTimeoutsOnSocket(t *testing.T) {
	t.Parallel()
	waits(t, func(t *testing.T, mk func(*h1.Server) *h1.Server) {
		t.Run("idle", func(t *testing.T) {
			t.Parallel()
			srv := mk(&h1.Server{IdleTimeout: 900 * time.Millisecond, ReadHeaderTimeout: 5 * time.Second})
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
				srv := mk(&h1.Server{ReadHeaderTimeout: 2 * time.Second, IdleTimeout: 5 * time.Second})
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
	})
}

// TestShutdownClosesConnectionWaitingOnSocket: Shutdown closes a
// connection that has waited on its socket.
func TestShutdownClosesConnectionWaitingOnSocket(t *testing.T) {
	t.Parallel()
	waits(t, func(t *testing.T, mk func(*h1.Server) *h1.Server) {
		srv := mk(&h1.Server{IdleTimeout: time.Minute, ReadHeaderTimeout: time.Minute})
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
	})
}

// TestLaterRequestHeaderTimeout: a kept-alive connection's next request
// whose headers do not all arrive with its first bytes has
// ReadHeaderTimeout from then, whether it came while the connection
// waited in crypto/tls's read or on its socket.
func TestLaterRequestHeaderTimeout(t *testing.T) {
	t.Parallel()
	waits(t, func(t *testing.T, mk func(*h1.Server) *h1.Server) {
		for _, pause := range []time.Duration{50 * time.Millisecond, 600 * time.Millisecond} {
			t.Run("next request after "+pause.String(), func(t *testing.T) {
				t.Parallel()
				srv := mk(&h1.Server{ReadHeaderTimeout: 1200 * time.Millisecond, IdleTimeout: 10 * time.Second})
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
	})
}

// TestConnIdle: ConnIdle is called with the connection's context each time
// the connection has waited 250 ms for a request (before its first and
// between two), and not while its requests follow each other sooner.
func TestConnIdle(t *testing.T) {
	t.Parallel()
	waits(t, func(t *testing.T, mk func(*h1.Server) *h1.Server) {
		type key struct{}
		calls := make(chan any, 16)
		srv := mk(&h1.Server{
			ConnContext: func(ctx context.Context, c net.Conn) context.Context {
				return context.WithValue(ctx, key{}, "conn")
			},
			ConnIdle: func(ctx context.Context) { calls <- ctx.Value(key{}) },
			Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("X-Path", r.URL.Path)
				io.WriteString(w, "path "+r.URL.Path)
			}),
		})
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
	})
}

// TestParkedConnections: with a Parker, connections idle past 250 ms park
// and give up their goroutines; each one's next request is served, on the
// same connection, by a new goroutine, with the connection's TLS state
// (which the park let go of); done is called once per
// connection, when it ends: by the client's close, by a refused request,
// and by Close.
func TestParkedConnections(t *testing.T) {
	p := newParker(t)
	srv := &h1.Server{Parker: p, IdleTimeout: time.Minute, ReadHeaderTimeout: time.Minute,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			tlsOK := r.TLS != nil && r.TLS.HandshakeComplete && r.TLS.ServerName == "example.com"
			fmt.Fprintf(w, "path %s tls %v", r.URL.Path, tlsOK)
		}),
	}
	var mu sync.Mutex
	var dones []error
	ended := make(chan struct{}, 64)
	addr := serveTLSDone(t, srv, func(err error) {
		mu.Lock()
		dones = append(dones, err)
		mu.Unlock()
		ended <- struct{}{}
	})
	eventually := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); !ok(); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d open, %d parked", what, srv.Open(), p.Len())
			}
		}
	}
	const n = 20
	before := runtime.NumGoroutine()
	type client struct {
		c  *tls.Conn
		br *bufio.Reader
	}
	var clients []client
	for range n {
		c, _, br := dialTLS(t, addr)
		io.WriteString(c, get("/a"))
		readBody(t, br, "path /a tls true")
		clients = append(clients, client{c, br})
	}
	eventually("all parked", func() bool { return p.Len() == n })
	if g := runtime.NumGoroutine() - before; g > n/2 {
		t.Errorf("%d connections parked, %d goroutines more than before them", n, g)
	}
	for _, cl := range clients {
		io.WriteString(cl.c, get("/b"))
		readBody(t, cl.br, "path /b tls true")
	}
	if srv.Open() != n {
		t.Fatalf("%d connections open after the second requests, want %d", srv.Open(), n)
	}
	eventually("parked again", func() bool { return p.Len() == n })

	// The client closes a parked connection: it ends, once.
	clients[0].c.Close()
	<-ended
	// A refused request on a parked connection: done has its error.
	io.WriteString(clients[1].c, "BAD REQUEST\r\n\r\n")
	resp, err := http.ReadResponse(clients[1].br, nil)
	if err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("a malformed request after the park: %v, %v, want 400", resp, err)
	}
	<-ended
	mu.Lock()
	var perr *h1.ProtocolError
	if len(dones) != 2 || dones[0] != nil || !errors.As(dones[1], &perr) {
		t.Errorf("done called with %v, want nil then a *ProtocolError", dones)
	}
	mu.Unlock()

	// Close wakes the rest and ends them.
	srv.Close()
	for range n - 2 {
		select {
		case <-ended:
		case <-time.After(5 * time.Second):
			t.Fatalf("Close: %d connections still open, %d parked", srv.Open(), p.Len())
		}
	}
	eventually("closed", func() bool { return srv.Open() == 0 && p.Len() == 0 })
	for i, cl := range clients[2:] {
		if _, err := cl.br.ReadByte(); err == nil {
			t.Errorf("connection %d: read a byte after Close", i+2)
		}
	}
	time.Sleep(20 * time.Millisecond)
	mu.Lock()
	if len(dones) != n {
		t.Errorf("done called %d times for %d connections", len(dones), n)
	}
	mu.Unlock()
}
