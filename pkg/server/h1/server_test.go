package h1_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/edgectl/edgectl/pkg/server/h1"
)

// serve serves h on a loopback listener with srv's settings and returns
// the address.
func serve(t *testing.T, srv *h1.Server, h http.Handler) string {
	t.Helper()
	srv.Handler = h
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
			go srv.ServeConn(c)
		}
	}()
	t.Cleanup(func() { ln.Close(); srv.Close() })
	return ln.Addr().String()
}

func dial(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	t.Cleanup(func() { c.Close() })
	return c, bufio.NewReader(c)
}

// exchange writes raw and reads one response to a request of method.
func exchange(t *testing.T, c net.Conn, br *bufio.Reader, method, raw string) (*http.Response, string) {
	t.Helper()
	if raw != "" {
		if _, err := io.WriteString(c, raw); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		t.Fatalf("reading the response: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the body: %v", err)
	}
	return resp, string(body)
}

// closed reports whether the server closed c (a read ends without data).
func closed(c net.Conn, br *bufio.Reader) bool {
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	_, err := br.ReadByte()
	return err == io.EOF || err != nil && !isTimeout(err)
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

func echo() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Method", r.Method)
		w.Header().Set("X-Host", r.Host)
		w.Header().Set("Content-Length", fmt.Sprint(len(body)+len(r.URL.RequestURI())+1))
		fmt.Fprintf(w, "%s %s", r.URL.RequestURI(), body)
	})
}

func TestKeepAliveAndPipelining(t *testing.T) {
	addr := serve(t, &h1.Server{}, echo())
	c, br := dial(t, addr)
	for i := range 3 {
		resp, body := exchange(t, c, br, "GET", fmt.Sprintf("GET /n%d HTTP/1.1\r\nHost: a.test\r\n\r\n", i))
		if want := fmt.Sprintf("/n%d ", i); body != want || resp.Close {
			t.Fatalf("request %d: body %q close %v, want %q on a kept-alive connection", i, body, resp.Close, want)
		}
		if resp.Header.Get("Date") == "" {
			t.Fatal("no Date header")
		}
	}
	// Three requests in one write are answered in order.
	io.WriteString(c, "GET /p1 HTTP/1.1\r\nHost: a.test\r\n\r\nPOST /p2 HTTP/1.1\r\nHost: a.test\r\nContent-Length: 3\r\n\r\nabcGET /p3 HTTP/1.1\r\nHost: a.test\r\n\r\n")
	var got []string
	for range 3 {
		_, body := exchange(t, c, br, "GET", "")
		got = append(got, body)
	}
	if diff := cmp.Diff([]string{"/p1 ", "/p2 abc", "/p3 "}, got); diff != "" {
		t.Fatalf("pipelined responses (-want +got):\n%s", diff)
	}
}

func TestFraming(t *testing.T) {
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/stream":
			w.Write([]byte("part1,"))
			w.(http.Flusher).Flush()
			w.Write([]byte("part2"))
		case "/empty":
		case "/nocontent":
			w.WriteHeader(http.StatusNoContent)
			w.Write([]byte("ignored"))
		case "/short":
			w.Header().Set("Content-Length", "10")
			w.Write([]byte("abc"))
		case "/long":
			w.Header().Set("Content-Length", "3")
			if _, err := w.Write([]byte("abcdef")); err != http.ErrContentLength {
				panic("no ErrContentLength")
			}
		case "/split":
			w.Header()["X-Evil"] = []string{"a\r\nInjected: yes"}
			w.Header().Set("Content-Length", "2")
			w.Write([]byte("ok"))
		}
	})
	addr := serve(t, &h1.Server{}, handler)
	tests := []struct {
		name, method, raw string
		wantBody, wantTE  string
		wantLen           int64
		wantClose         bool
	}{
		{name: "chunked when the length is unknown", method: "GET", raw: "GET /stream HTTP/1.1\r\nHost: a\r\n\r\n", wantBody: "part1,part2", wantTE: "chunked", wantLen: -1},
		{name: "HTTP/1.0 ends an unknown length with the connection", method: "GET", raw: "GET /stream HTTP/1.0\r\n\r\n", wantBody: "part1,part2", wantLen: -1, wantClose: true},
		{name: "empty response has length 0", method: "GET", raw: "GET /empty HTTP/1.1\r\nHost: a\r\n\r\n", wantLen: 0},
		{name: "HEAD has no body", method: "HEAD", raw: "HEAD /stream HTTP/1.1\r\nHost: a\r\n\r\n", wantLen: -1},
		{name: "204 has no body", method: "GET", raw: "GET /nocontent HTTP/1.1\r\nHost: a\r\n\r\n", wantLen: 0},
		{name: "a body shorter than its length closes", method: "GET", raw: "GET /long HTTP/1.1\r\nHost: a\r\n\r\n", wantBody: "abc", wantLen: 3},
		{name: "a client asking to close", method: "GET", raw: "GET /empty HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", wantLen: 0, wantClose: true},
		{name: "HTTP/1.0 keep-alive", method: "GET", raw: "GET /empty HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", wantLen: 0},
		{name: "line breaks in a header value do not split it", method: "GET", raw: "GET /split HTTP/1.1\r\nHost: a\r\n\r\n", wantBody: "ok", wantLen: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, br := dial(t, addr)
			resp, body := exchange(t, c, br, tt.method, tt.raw)
			te := strings.Join(resp.TransferEncoding, ",")
			if body != tt.wantBody || te != tt.wantTE || resp.ContentLength != tt.wantLen || resp.Close != tt.wantClose {
				t.Fatalf("body %q TE %q length %d close %v; want %q %q %d %v", body, te, resp.ContentLength, resp.Close, tt.wantBody, tt.wantTE, tt.wantLen, tt.wantClose)
			}
			if resp.Header.Get("Injected") != "" {
				t.Fatal("a header value split the header block")
			}
			if !tt.wantClose && (tt.method != "GET" || resp.StatusCode != 204) {
				if _, body := exchange(t, c, br, "GET", "GET /empty HTTP/1.1\r\nHost: a\r\n\r\n"); body != "" {
					t.Fatalf("the next response has body %q", body)
				}
			}
		})
	}
	t.Run("a body shorter than its length ends the connection", func(t *testing.T) {
		c, br := dial(t, addr)
		io.WriteString(c, "GET /short HTTP/1.1\r\nHost: a\r\n\r\n")
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadAll(resp.Body); err != io.ErrUnexpectedEOF {
			t.Fatalf("reading a truncated body: %v, want unexpected EOF", err)
		}
	})
}

func TestRefusedRequests(t *testing.T) {
	var reached atomic.Int32
	addr := serve(t, &h1.Server{MaxHeaderBytes: 1024}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
	}))
	tests := []struct {
		name, raw  string
		wantStatus int
	}{
		{"missing Host", "GET / HTTP/1.1\r\n\r\n", 400},
		{"two Host headers", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
		{"malformed Host", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400},
		{"invalid header name", "GET / HTTP/1.1\r\nHost: a\r\nBad Name: x\r\n\r\n", 400},
		{"control character in a value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n", 400},
		{"garbage", "HELLO\r\n\r\n", 400},
		{"HTTP/2 over HTTP/1", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505},
		{"headers too large", "GET / HTTP/1.1\r\nHost: a\r\nX: " + strings.Repeat("a", 8000) + "\r\n\r\n", 431},
		{"conflicting lengths", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400},
		{"unknown transfer encoding", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 501},
		{"unknown expectation", "POST / HTTP/1.1\r\nHost: a\r\nExpect: magic\r\nContent-Length: 1\r\n\r\na", 417},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, br := dial(t, addr)
			resp, _ := exchange(t, c, br, "GET", tt.raw)
			if resp.StatusCode != tt.wantStatus || !resp.Close {
				t.Fatalf("status %d close %v, want %d and close", resp.StatusCode, resp.Close, tt.wantStatus)
			}
			if !closed(c, br) {
				t.Fatal("the connection stayed open")
			}
		})
	}
	if n := reached.Load(); n != 0 {
		t.Fatalf("the handler saw %d refused requests", n)
	}
}

func TestRequestBodies(t *testing.T) {
	addr := serve(t, &h1.Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/ignore" {
			w.Header().Set("Content-Length", "7")
			io.WriteString(w, "ignored")
			return
		}
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		w.Write(body)
	}))
	t.Run("chunked", func(t *testing.T) {
		c, br := dial(t, addr)
		_, body := exchange(t, c, br, "POST", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
		if body != "abcde" {
			t.Fatalf("body %q", body)
		}
	})
	t.Run("an unread body is drained and the connection kept", func(t *testing.T) {
		c, br := dial(t, addr)
		resp, _ := exchange(t, c, br, "POST", "POST /ignore HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello")
		if resp.Close {
			t.Fatal("closed")
		}
		if _, body := exchange(t, c, br, "POST", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi"); body != "hi" {
			t.Fatalf("next request's body %q: the unread body was taken for a request", body)
		}
	})
	t.Run("an unread body too large to drain closes", func(t *testing.T) {
		c, br := dial(t, addr)
		io.WriteString(c, "POST /ignore HTTP/1.1\r\nHost: a\r\nContent-Length: 10000000\r\n\r\n")
		go c.Write(make([]byte, 1<<20))
		resp, _ := exchange(t, c, br, "POST", "")
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		if !closed(c, br) {
			t.Fatal("the connection stayed open after an undrainable body")
		}
	})
	t.Run("100-continue is sent when the body is read", func(t *testing.T) {
		c, br := dial(t, addr)
		io.WriteString(c, "POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n")
		line, err := br.ReadString('\n')
		if err != nil || line != "HTTP/1.1 100 Continue\r\n" {
			t.Fatalf("interim response %q %v", line, err)
		}
		br.ReadString('\n')
		_, body := exchange(t, c, br, "POST", "abc")
		if body != "abc" {
			t.Fatalf("body %q", body)
		}
	})
	t.Run("100-continue never sent closes after the answer", func(t *testing.T) {
		c, br := dial(t, addr)
		resp, body := exchange(t, c, br, "POST", "POST /ignore HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n")
		if body != "ignored" || !resp.Close {
			t.Fatalf("body %q close %v", body, resp.Close)
		}
	})
}

func TestTimeouts(t *testing.T) {
	addr := serve(t, &h1.Server{ReadHeaderTimeout: 300 * time.Millisecond, IdleTimeout: 300 * time.Millisecond}, echo())
	t.Run("slow headers", func(t *testing.T) {
		c, br := dial(t, addr)
		began := time.Now()
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n")
		if !closed(c, br) || time.Since(began) > 1500*time.Millisecond {
			t.Fatalf("unfinished headers kept the connection for %v", time.Since(began))
		}
	})
	t.Run("idle", func(t *testing.T) {
		c, br := dial(t, addr)
		exchange(t, c, br, "GET", "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
		began := time.Now()
		if !closed(c, br) || time.Since(began) > 1500*time.Millisecond {
			t.Fatalf("an idle connection stayed open %v", time.Since(began))
		}
	})
	t.Run("a slow body is not cut by the header timeout", func(t *testing.T) {
		c, br := dial(t, addr)
		io.WriteString(c, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\na")
		time.Sleep(500 * time.Millisecond)
		if _, body := exchange(t, c, br, "POST", "b"); body != "/ ab" {
			t.Fatalf("body %q", body)
		}
	})
}

func TestPanics(t *testing.T) {
	var logged atomic.Int32
	srv := &h1.Server{ErrorLog: func(string, ...any) { logged.Add(1) }}
	addr := serve(t, srv, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		w.Write([]byte("half"))
		if r.URL.Path == "/abort" {
			panic(http.ErrAbortHandler)
		}
		panic("boom")
	}))
	for _, path := range []string{"/abort", "/boom"} {
		c, br := dial(t, addr)
		io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: a\r\n\r\n")
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		if got, err := io.ReadAll(br); err != nil || len(got) != 0 {
			t.Fatalf("%s: the client got %q (%v), want the connection closed without a response", path, got, err)
		}
	}
	if n := logged.Load(); n != 1 {
		t.Fatalf("logged %d panics, want 1 (ErrAbortHandler is not logged)", n)
	}
}

func TestShutdown(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	srv := &h1.Server{}
	addr := serve(t, srv, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			started <- struct{}{}
			<-release
		}
		w.Header().Set("Content-Length", "2")
		io.WriteString(w, "ok")
	}))
	idle, idleBr := dial(t, addr)
	exchange(t, idle, idleBr, "GET", "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	busy, busyBr := dial(t, addr)
	io.WriteString(busy, "GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
	<-started

	done := make(chan error, 1)
	go func() { done <- srv.Shutdown(context.Background()) }()
	if !closed(idle, idleBr) {
		t.Fatal("Shutdown left an idle connection open")
	}
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned (%v) with a request in flight", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	resp, body := exchange(t, busy, busyBr, "GET", "")
	if body != "ok" || !resp.Close {
		t.Fatalf("in-flight request: body %q close %v, want ok and Connection: close", body, resp.Close)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := srv.ServeConn(&net.TCPConn{}); err != h1.ErrServerClosed {
		t.Fatalf("ServeConn after Shutdown: %v", err)
	}
}

func TestShutdownTimeout(t *testing.T) {
	srv := &h1.Server{}
	block := make(chan struct{})
	defer close(block)
	addr := serve(t, srv, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-block }))
	c, _ := dial(t, addr)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	for srv.Open() == 0 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := srv.Shutdown(ctx); err != context.DeadlineExceeded {
		t.Fatalf("Shutdown with a stuck request: %v", err)
	}
}

// TestTLSState: requests on a TLS connection carry its state and the
// client's address.
func TestTLSState(t *testing.T) {
	// httptest's certificate, for example.com.
	ts := httptest.NewTLSServer(nil)
	serverCfg := ts.TLS.Clone()
	ts.Close()
	var got atomic.Value
	srv := &h1.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Store(fmt.Sprintf("tls=%v sni=%s remote=%v", r.TLS != nil && r.TLS.HandshakeComplete, r.TLS.ServerName, r.RemoteAddr != ""))
	})}
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
	defer c.Close()
	resp, _ := exchange(t, c, bufio.NewReader(c), "GET", "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n")
	if resp.StatusCode != 200 || got.Load() != "tls=true sni=example.com remote=true" {
		t.Fatalf("status %d, handler saw %v", resp.StatusCode, got.Load())
	}
}

func TestTrailers(t *testing.T) {
	addr := serve(t, &h1.Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Sum")
		w.Header().Set("X-Sum", "announced only")
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, "abc")
		w.Header().Set("X-Sum", "3")
		w.Header().Set(http.TrailerPrefix+"X-Late", "yes")
		w.Header().Set(http.TrailerPrefix+"Content-Length", "9")
	}))
	c, br := dial(t, addr)
	resp, body := exchange(t, c, br, "GET", "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	if body != "abc" || resp.Header.Get("X-Sum") != "" {
		t.Fatalf("body %q, X-Sum in the head %q", body, resp.Header.Get("X-Sum"))
	}
	want := http.Header{"X-Sum": {"3"}, "X-Late": {"yes"}}
	if diff := cmp.Diff(want, resp.Trailer); diff != "" {
		t.Fatalf("trailers (-want +got):\n%s", diff)
	}
	if _, body := exchange(t, c, br, "GET", "GET / HTTP/1.1\r\nHost: a\r\n\r\n"); body != "abc" {
		t.Fatalf("the next response after trailers: %q", body)
	}
}

func TestShutdownClosesSilentConnections(t *testing.T) {
	srv := &h1.Server{ReadHeaderTimeout: 10 * time.Second}
	addr := serve(t, srv, echo())
	c, br := dial(t, addr)
	for srv.Open() == 0 {
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown with a connection that never sent a byte: %v", err)
	}
	if !closed(c, br) {
		t.Fatal("the silent connection stayed open")
	}
}

func TestStalledClients(t *testing.T) {
	srv := &h1.Server{BodyReadTimeout: 200 * time.Millisecond, WriteTimeout: 200 * time.Millisecond}
	handlerDone := make(chan error, 4)
	addr := serve(t, srv, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/read":
			_, err := io.ReadAll(r.Body)
			handlerDone <- err
		case "/big":
			chunk := make([]byte, 64<<10)
			var err error
			for i := 0; i < 4096 && err == nil; i++ {
				_, err = w.Write(chunk)
			}
			handlerDone <- err
		}
	}))
	for name, raw := range map[string]string{
		"a body that stops, read by the handler":   "POST /read HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc",
		"a body that stops, left for the drain":    "POST /ignore HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc",
		"a chunked body that stops mid-chunk":      "POST /read HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\na\r\nabc",
		"a client that does not read the response": "GET /big HTTP/1.1\r\nHost: a\r\n\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if tc, ok := c.(*net.TCPConn); ok {
				tc.SetReadBuffer(4 << 10)
			}
			io.WriteString(c, raw)
			began := time.Now()
			for srv.Open() == 0 {
				time.Sleep(time.Millisecond)
			}
			for srv.Open() != 0 {
				if time.Since(began) > 5*time.Second {
					t.Fatal("the stalled connection is still served after 5s")
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
}
