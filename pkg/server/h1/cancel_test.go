package h1_test

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/edgectl/edgectl/pkg/server/h1"
)

// waiter is a handler that reports when it starts, then waits for its
// request's context to end (or for release, or 10 s) and reports which.
type waiter struct {
	started chan string
	ended   chan string
	release chan struct{}
}

func newWaiter() *waiter {
	return &waiter{started: make(chan string, 8), ended: make(chan string, 8), release: make(chan struct{})}
}

func (h *waiter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	h.started <- r.Method + " " + r.URL.Path
	select {
	case <-r.Context().Done():
		h.ended <- "cancelled"
	case <-h.release:
		io.WriteString(w, "done "+r.Method+" "+r.URL.Path)
		h.ended <- "released"
	case <-time.After(10 * time.Second):
		h.ended <- "still running after 10s"
	}
}

// expect waits up to limit for a value on ch.
func expect(t *testing.T, ch <-chan string, want string, limit time.Duration) {
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

// TestCancelWhenClientCloses: a request's context is cancelled promptly
// when its client closes the connection while the handler works (after
// the request, with or without a body, was read), and when it resets it.
func TestCancelWhenClientCloses(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, raw string }{
		{"no body", "GET /a HTTP/1.1\r\nHost: a\r\n\r\n"},
		{"body with a length", "POST /b HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"},
		{"chunked body", "POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"},
		{"reset", "GET /d HTTP/1.1\r\nHost: a\r\n\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newWaiter()
			addr := serve(t, &h1.Server{}, h)
			c, _ := dial(t, addr)
			io.WriteString(c, tc.raw)
			expect(t, h.started, tc.raw[:strings.Index(tc.raw, " HTTP")], 5*time.Second)
			if tc.name == "reset" {
				c.(*net.TCPConn).SetLinger(0)
			}
			c.Close()
			expect(t, h.ended, "cancelled", time.Second)
		})
	}
}

// TestCancelOverTLS: the same over TLS, where the client's close_notify
// or its closed socket is what the watch reads.
func TestCancelOverTLS(t *testing.T) {
	t.Parallel()
	ts := httptest.NewTLSServer(nil)
	serverCfg := ts.TLS.Clone()
	ts.Close()
	h := newWaiter()
	srv := &h1.Server{Handler: h}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		tc := tls.Server(c, serverCfg)
		if tc.Handshake() == nil {
			srv.ServeConn(tc)
		}
	}()
	c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{ServerName: "example.com", InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "GET /tls HTTP/1.1\r\nHost: example.com\r\n\r\n")
	expect(t, h.started, "GET /tls", 5*time.Second)
	c.Close()
	expect(t, h.ended, "cancelled", time.Second)
}

// TestWatchKeepsPipelinedRequest: a request sent while the previous one's
// handler runs is read by the watch, which does not cancel anything and
// keeps the byte it read: both are answered, in order, on the same
// connection. A client that stays is never cancelled.
func TestWatchKeepsPipelinedRequest(t *testing.T) {
	t.Parallel()
	h := newWaiter()
	addr := serve(t, &h1.Server{}, h)
	c, br := dial(t, addr)
	io.WriteString(c, "POST /first HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi")
	expect(t, h.started, "POST /first", 5*time.Second)
	io.WriteString(c, "GET /second HTTP/1.1\r\nHost: a\r\n\r\n")
	time.Sleep(100 * time.Millisecond) // the watch reads the first byte
	h.release <- struct{}{}
	expect(t, h.ended, "released", 5*time.Second)
	if resp, body := exchange(t, c, br, "POST", ""); resp.StatusCode != 200 || body != "done POST /first" {
		t.Fatalf("first: %d %q", resp.StatusCode, body)
	}
	expect(t, h.started, "GET /second", 5*time.Second)
	h.release <- struct{}{}
	if resp, body := exchange(t, c, br, "GET", ""); resp.StatusCode != 200 || body != "done GET /second" {
		t.Fatalf("second: %d %q", resp.StatusCode, body)
	}
	expect(t, h.ended, "released", 5*time.Second)
}

// TestCloseCancels: Close (the end of a shutdown's grace period) cancels
// the requests in flight, including one whose body is still arriving.
func TestCloseCancels(t *testing.T) {
	t.Parallel()
	srv := &h1.Server{}
	started := make(chan struct{}, 1)
	ended := make(chan string, 1)
	addr := serve(t, srv, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		select {
		case <-r.Context().Done():
			ended <- "cancelled"
		case <-time.After(10 * time.Second):
			ended <- "still running after 10s"
		}
	}))
	c, _ := dial(t, addr)
	// The body never comes: nothing is watching the connection yet.
	io.WriteString(c, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n")
	<-started
	srv.Close()
	expect(t, ended, "cancelled", time.Second)
}

// TestWriteFailureCancels: a response write that fails (the client is
// gone) cancels the request's context.
func TestWriteFailureCancels(t *testing.T) {
	t.Parallel()
	ended := make(chan string, 1)
	started := make(chan struct{}, 1)
	addr := serve(t, &h1.Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		chunk := []byte(strings.Repeat("x", 64<<10))
		for i := 0; i < 1000; i++ {
			if _, err := w.Write(chunk); err != nil {
				break
			}
		}
		select {
		case <-r.Context().Done():
			ended <- "cancelled"
		default:
			ended <- "not cancelled"
		}
	}))
	c, br := dial(t, addr)
	// Pipelined bytes stop the watch from reading the connection: only
	// the failed write can tell.
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n")
	<-started
	br.Peek(1)
	c.(*net.TCPConn).SetLinger(0)
	c.Close()
	expect(t, ended, "cancelled", 5*time.Second)
}

// TestSweeperStops: the sweeper that starts the watches runs only while
// requests are in flight.
func TestSweeperStops(t *testing.T) {
	t.Parallel()
	h := newWaiter()
	srv := &h1.Server{}
	addr := serve(t, srv, h)
	c, br := dial(t, addr)
	io.WriteString(c, "GET /a HTTP/1.1\r\nHost: a\r\n\r\n")
	expect(t, h.started, "GET /a", 5*time.Second)
	if !srv.Sweeping() {
		t.Fatal("no sweeper while a request is in flight")
	}
	h.release <- struct{}{}
	exchange(t, c, br, "GET", "")
	deadline := time.Now().Add(2 * time.Second)
	for srv.Sweeping() {
		if time.Now().After(deadline) {
			t.Fatal("the sweeper still runs with no request in flight")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestConnContextCancelled: requests' contexts are derived from
// ConnContext's: when that context is cancelled, so is the request's.
func TestConnContextCancelled(t *testing.T) {
	t.Parallel()
	parent, cancel := context.WithCancel(context.Background())
	defer cancel()
	h := newWaiter()
	addr := serve(t, &h1.Server{ConnContext: func(context.Context, net.Conn) context.Context { return parent }}, h)
	c, _ := dial(t, addr)
	io.WriteString(c, "GET /a HTTP/1.1\r\nHost: a\r\n\r\n")
	expect(t, h.started, "GET /a", 5*time.Second)
	cancel()
	expect(t, h.ended, "cancelled", time.Second)
}
