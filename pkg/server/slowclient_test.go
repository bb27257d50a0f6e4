package server_test

import (
	"crypto/tls"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/edgectl/edgectl/pkg/server"
)

// clientHello records the bytes of a real ClientHello for open.test.
func clientHello(t *testing.T) []byte {
	t.Helper()
	a, b := net.Pipe()
	go func() {
		c := tls.Client(a, &tls.Config{ServerName: "open.test", InsecureSkipVerify: true})
		c.Handshake()
	}()
	b.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 4096)
	n, _ := b.Read(buf)
	a.Close()
	b.Close()
	if n < 50 {
		t.Fatalf("captured only %d bytes of ClientHello", n)
	}
	return buf[:n]
}

// closedWithin reports how long until the server closed conn (reads fail).
func closedWithin(conn net.Conn, limit time.Duration) (time.Duration, bool) {
	began := time.Now()
	conn.SetReadDeadline(time.Now().Add(limit))
	_, err := io.Copy(io.Discard, conn)
	took := time.Since(began)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return took, false
	}
	return took, true
}

// TestSlowClientHello: a ClientHello sent byte by byte does not extend the
// handshake deadline; the connection is closed when it expires.
func TestSlowClientHello(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	r := start(t, f, func(c *server.Config) { c.HandshakeTimeout = 400 * time.Millisecond })
	hello := clientHello(t)
	conn, err := net.Dial("tcp", r.srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	began := time.Now()
	go func() {
		for _, b := range hello {
			if _, err := conn.Write([]byte{b}); err != nil {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	took, closed := closedWithin(conn, 5*time.Second)
	if !closed || time.Since(began) > 2*time.Second {
		t.Fatalf("a byte-by-byte ClientHello kept the connection open for %v (closed=%v)", took, closed)
	}
}

// TestSlowHeaders: after the handshake, a client that sends its request
// headers slowly is cut off by the header timeout.
func TestSlowHeaders(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	r := start(t, f, func(c *server.Config) { c.HeaderTimeout = 400 * time.Millisecond })
	roots := f.root.Pool()
	conn, err := tls.Dial("tcp", r.srv.Addr().String(), &tls.Config{ServerName: "open.test", RootCAs: roots, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	go func() {
		for _, b := range []byte("GET / HTTP/1.1\r\nHost: open.test\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa") {
			if _, err := conn.Write([]byte{b}); err != nil {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	if took, closed := closedWithin(conn, 5*time.Second); !closed || took > 2*time.Second {
		t.Fatalf("slow headers kept the connection open for %v (closed=%v)", took, closed)
	}
}

// TestManyIdleConnections: hundreds of connections that never complete a
// handshake do not stop the edge from serving, and are all closed by the
// handshake timeout.
func TestManyIdleConnections(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	r := start(t, f, func(c *server.Config) { c.HandshakeTimeout = 500 * time.Millisecond })
	var idle []net.Conn
	for i := 0; i < 300; i++ {
		c, err := net.Dial("tcp", r.srv.Addr().String())
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		idle = append(idle, c)
	}
	defer func() {
		for _, c := range idle {
			c.Close()
		}
	}()
	c := r.client(f, "open.test", nil, false)
	if status, _, _, err := get(c, "open.test", "/"); err != nil || status != 200 {
		t.Fatalf("with 300 idle connections open: %d %v", status, err)
	}
	deadline := time.Now().Add(3 * time.Second)
	for _, conn := range idle {
		if _, closed := closedWithin(conn, time.Until(deadline)); !closed {
			t.Fatal("an idle connection outlived the handshake timeout")
		}
	}
}

// TestDefaultTimeouts pins the documented defaults.
func TestDefaultTimeouts(t *testing.T) {
	t.Parallel()
	if server.DefaultHandshakeTimeout != 10*time.Second || server.DefaultHeaderTimeout != 10*time.Second || server.DefaultIdleTimeout != 120*time.Second {
		t.Fatalf("defaults: handshake %v, header %v, idle %v", server.DefaultHandshakeTimeout, server.DefaultHeaderTimeout, server.DefaultIdleTimeout)
	}
}

// TestPlainHTTPToTLSPort: a plain-HTTP request on the edge's port is told
// why it fails (as net/http does) and counted as not_tls.
func TestPlainHTTPToTLSPort(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	r := start(t, f, nil)
	conn, err := net.Dial("tcp", r.srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(conn, "GET / HTTP/1.1\r\nHost: open.test\r\n\r\n")
	got, _ := io.ReadAll(conn)
	if !strings.HasPrefix(string(got), "HTTP/1.0 400 Bad Request\r\n") || !strings.Contains(string(got), "HTTP request to an HTTPS server") {
		t.Fatalf("answer %q", got)
	}
	eventually(t, "the refusal counted as not_tls", func() bool {
		return r.metric(t, `edgectl_tls_handshake_errors_total{reason="not_tls"}`) == "1"
	})
}
