package proxy

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// testListener accepts connections and reports when each one is closed by
// the pool (the read returns).
type testListener struct {
	net.Listener
	closed chan struct{}
}

func listen(t *testing.T) *testListener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &testListener{Listener: ln, closed: make(chan struct{}, 64)}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				io.Copy(io.Discard, c)
				c.Close()
				l.closed <- struct{}{}
			}()
		}
	}()
	return l
}

func (l *testListener) pool(t *testing.T) *originPool {
	u, _ := url.Parse("http://" + l.Addr().String())
	p := newOriginPool(u, nil, time.Second)
	t.Cleanup(p.close)
	return p
}

// waitClosed waits for n connections to be closed.
func (l *testListener) waitClosed(t *testing.T, n int) {
	t.Helper()
	for range n {
		select {
		case <-l.closed:
		case <-time.After(5 * time.Second):
			t.Fatal("an origin connection was not closed")
		}
	}
}

func dialN(t *testing.T, p *originPool, n int) []*originConn {
	t.Helper()
	var cs []*originConn
	for range n {
		c, err := p.dial(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
	}
	return cs
}

func TestPoolIsLIFO(t *testing.T) {
	t.Parallel()
	p := listen(t).pool(t)
	cs := dialN(t, p, 3)
	for _, c := range cs {
		p.release(c, true)
	}
	for i := 2; i >= 0; i-- {
		if got := p.get(); got != cs[i] {
			t.Fatalf("get returned connection %p, want the most recent %p", got, cs[i])
		}
	}
	if p.get() != nil {
		t.Fatal("an empty pool returned a connection")
	}
}

func TestPoolIdleTimeout(t *testing.T) {
	t.Parallel()
	l := listen(t)
	p := l.pool(t)
	p.idleTimeout = 50 * time.Millisecond
	cs := dialN(t, p, 3)
	p.release(cs[0], true)
	p.release(cs[1], true)
	time.Sleep(30 * time.Millisecond)
	p.release(cs[2], true)
	// The two oldest expire first, then the last one.
	l.waitClosed(t, 3)
	p.mu.Lock()
	n, armed := len(p.idle), p.armed
	p.mu.Unlock()
	if n != 0 || armed {
		t.Fatalf("after expiry: %d idle, janitor armed %v", n, armed)
	}
	// The pool works on after the janitor emptied it.
	c := dialN(t, p, 1)[0]
	p.release(c, true)
	if p.get() != c {
		t.Fatal("the pool did not keep a connection after expiry")
	}
}

func TestPoolLimitAndClose(t *testing.T) {
	t.Parallel()
	l := listen(t)
	p := l.pool(t)
	p.maxIdle = 2
	cs := dialN(t, p, 4)
	for _, c := range cs[:3] {
		p.release(c, true)
	}
	l.waitClosed(t, 1) // the third exceeded the limit
	p.release(cs[3], false)
	l.waitClosed(t, 1) // not reusable
	p.close()
	l.waitClosed(t, 2) // the idle ones
	c := dialN(t, p, 1)[0]
	p.release(c, true)
	l.waitClosed(t, 1) // released after close
	p.close()          // idempotent
}

// TestPoolProbe: a connection the origin closed while idle is discarded by
// a probing get.
func TestPoolProbe(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 2)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	u, _ := url.Parse("http://" + ln.Addr().String())
	p := newOriginPool(u, nil, time.Second)
	defer p.close()
	// Connections are accepted in the order they were dialed.
	dead, live := dialN(t, p, 1)[0], dialN(t, p, 1)[0]
	(<-accepted).Close()
	defer (<-accepted).Close()
	p.release(live, true)
	p.release(dead, true) // on top
	deadline := time.Now().Add(2 * time.Second)
	for dead.alive() && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got := p.get(); got != live {
		t.Fatalf("probing get returned %p, want the open connection %p", got, live)
	}
}

// TestPoolProbeAfterDeadline checks that a connection whose last
// exchange's deadline passed while it was idle is still probed and
// reused: the probe does not honour read deadlines.
func TestPoolProbeAfterDeadline(t *testing.T) {
	t.Parallel()
	l := listen(t)
	p := l.pool(t)
	c := dialN(t, p, 1)[0]
	c.conn.SetDeadline(time.Now().Add(time.Millisecond))
	time.Sleep(20 * time.Millisecond)
	p.release(c, true)
	if got := p.get(); got != c {
		t.Fatalf("get returned %p, want the idle connection %p", got, c)
	}
}

func TestWriteFieldRefusesControlBytes(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct{ name, value string }{
		"CR in value":             {"X-A", "a\rb"},
		"LF in value":             {"X-A", "a\nX-Injected: 1"},
		"NUL in value":            {"X-A", "a\x00b"},
		"CR deep in a long value": {"X-A", strings.Repeat("MIIB%2F", 250) + "\r\nX-Injected: 1"},
		"DEL in a long value":     {"X-A", strings.Repeat("abcdefgh", 40) + "\x7f"},
		"CRLF in name":            {"X-A\r\nX-B", "1"},
		"colon in name":           {"X-A:", "1"},
		"empty name":              {"", "1"},
	} {
		t.Run(name, func(t *testing.T) {
			var b strings.Builder
			bw := bufio.NewWriter(&b)
			if err := writeField(bw, tc.name, tc.value); err == nil {
				t.Fatal("written")
			}
			bw.Flush()
			if b.Len() != 0 {
				t.Fatalf("wrote %q", b.String())
			}
		})
	}
}

// TestResponseHeaderLimit: an origin that sends an endless header section
// fails the request instead of filling the edge's memory.
func TestResponseHeaderLimit(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.Write([]byte("HTTP/1.1 200 OK\r\n"))
		line := []byte("X-Filler: " + strings.Repeat("a", 1000) + "\r\n")
		for range 2 * maxResponseHeaderBytes / len(line) {
			if _, err := c.Write(line); err != nil {
				return
			}
		}
	})
	u, _ := url.Parse("http://" + ln.Addr().String())
	p := newOriginPool(u, nil, time.Second)
	defer p.close()
	c := dialN(t, p, 1)[0]
	defer c.close()
	c.conn.SetDeadline(time.Now().Add(5 * time.Second))
	_, err = c.readResponse(&http.Request{Method: "GET"})
	if !errors.Is(err, errResponseHeaderTooLarge) {
		t.Fatalf("want errResponseHeaderTooLarge, got %v", err)
	}
}

// TestPoolKeepsEveryConnectionItMayOpen: with a connection limit, the
// pool keeps as many idle connections as the limit lets it open, so a
// burst of that many concurrent exchanges is served again without
// dialling; without a limit it keeps maxIdleConns.
func TestPoolKeepsEveryConnectionItMayOpen(t *testing.T) {
	t.Parallel()
	u, _ := url.Parse("http://127.0.0.1:1")
	for _, c := range []struct{ maxConns, want int }{{300, 300}, {1024, 1024}, {10, 10}, {0, maxIdleConns}} {
		if got := New(Config{URL: u, MaxConns: c.maxConns}).pool.maxIdle; got != c.want {
			t.Errorf("MaxConns %d: %d idle connections kept, want %d", c.maxConns, got, c.want)
		}
	}
	l := listen(t)
	p := l.pool(t)
	p.maxConns, p.maxIdle = 300, 300
	cs := dialN(t, p, 300)
	for _, c := range cs {
		p.release(c, true)
	}
	p.mu.Lock()
	n := len(p.idle)
	p.mu.Unlock()
	if n != 300 {
		t.Fatalf("%d of 300 released connections kept idle", n)
	}
}
