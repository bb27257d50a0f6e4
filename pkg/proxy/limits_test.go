package proxy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// slowOrigin accepts connections, reads one request head on each and
// then, after sending prefix (nothing, a response head, part of a
// body...), stalls; it reports when the edge closes the connection.
func slowOrigin(t *testing.T, prefix string) (u *url.URL, arrived chan struct{}, closed chan time.Time) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	arrived, closed = make(chan struct{}, 8), make(chan time.Time, 8)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				if _, err := http.ReadRequest(br); err != nil {
					return
				}
				io.WriteString(c, prefix)
				arrived <- struct{}{}
				c.SetReadDeadline(time.Now().Add(20 * time.Second))
				io.Copy(io.Discard, br) // returns when the edge closes
				closed <- time.Now()
			}()
		}
	}()
	u, _ = url.Parse("http://" + ln.Addr().String())
	return u, arrived, closed
}

func waitFor[T any](t *testing.T, ch chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// TestExchangeCancelledWaitingForResponse: a context cancelled while the
// origin works on the request ends the exchange at once with the
// context's error, and the origin sees its connection close promptly
// (not at the response timeout); the connection is not pooled.
func TestExchangeCancelledWaitingForResponse(t *testing.T) {
	t.Parallel()
	u, arrived, closed := slowOrigin(t, "")
	o := New(Config{URL: u, ConnectTimeout: time.Second, ResponseTimeout: 30 * time.Second, MaxConns: 4, MaxQueue: 4, QueueTimeout: time.Second})
	t.Cleanup(o.Close)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := o.RoundTrip(ctx, httptest.NewRequest("GET", "https://edge.example/slow", nil), &Outbound{})
		errc <- err
	}()
	waitFor(t, arrived, "the request at the origin")
	cancelled := time.Now()
	cancel()
	if err := waitFor(t, errc, "RoundTrip to return"); !errors.Is(err, context.Canceled) {
		t.Errorf("RoundTrip: %v, want context.Canceled", err)
	}
	if d := waitFor(t, closed, "the origin connection to close").Sub(cancelled); d > time.Second {
		t.Errorf("the origin connection closed %v after the cancel", d)
	}
	if o.Open() != 0 || o.Idle() != 0 {
		t.Errorf("%d connections open, %d idle after a cancelled exchange, want none", o.Open(), o.Idle())
	}
}

// TestExchangeCancelledDuringRelay: a context cancelled while the
// response body is relayed closes the origin connection; Relay reports the
// client gone (no error: nothing is the origin's fault) and the
// connection is not pooled.
func TestExchangeCancelledDuringRelay(t *testing.T) {
	t.Parallel()
	u, arrived, closed := slowOrigin(t, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npart")
	o := New(Config{URL: u, ConnectTimeout: time.Second, ResponseTimeout: 30 * time.Second})
	t.Cleanup(o.Close)
	ctx, cancel := context.WithCancel(context.Background())
	x, err := o.RoundTrip(ctx, httptest.NewRequest("GET", "https://edge.example/", nil), &Outbound{})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, arrived, "the request at the origin")
	time.AfterFunc(100*time.Millisecond, cancel)
	w := httptest.NewRecorder()
	keep, err := x.Relay(w)
	x.Release(keep)
	if keep || err != nil {
		t.Errorf("Relay: keep %v, err %v; want false, nil", keep, err)
	}
	waitFor(t, closed, "the origin connection to close")
	if o.Idle() != 0 {
		t.Errorf("%d idle connections, want 0", o.Idle())
	}
}

// TestPoolLimitAndQueue: with two connections and a queue of one, a third
// request waits and gets the connection the first releases, a fourth is
// refused at once, a queued request gives up at the queue timeout or when
// its context is cancelled, and a closed connection's slot goes to the
// next waiter.
func TestPoolLimitAndQueue(t *testing.T) {
	t.Parallel()
	l := listen(t)
	u, _ := url.Parse("http://" + l.Addr().String())
	p := newOriginPool(u, nil, time.Second)
	p.maxConns, p.maxQueue, p.queueTimeout = 2, 1, 5*time.Second
	t.Cleanup(p.close)
	ctx := context.Background()
	var held []*originConn
	for range 2 {
		c, err := p.acquire(ctx)
		if c != nil || err != nil {
			t.Fatalf("acquire with free slots: %v %v, want a slot to dial", c, err)
		}
		if c, err = p.dial(ctx); err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	type got struct {
		c   *originConn
		err error
	}
	third := make(chan got, 1)
	go func() { c, err := p.acquire(ctx); third <- got{c, err} }()
	for p.waiting() != 1 {
		time.Sleep(time.Millisecond)
	}
	if _, err := p.acquire(ctx); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("acquire with the queue full: %v, want ErrQueueFull", err)
	}
	p.release(held[0], true)
	if g := waitFor(t, third, "the queued request"); g.err != nil || g.c != held[0] {
		t.Fatalf("queued request got %v %v, want the released connection", g.c, g.err)
	}

	// Cancelled while queued: it leaves the queue.
	cctx, cancel := context.WithCancel(ctx)
	fourth := make(chan got, 1)
	go func() { c, err := p.acquire(cctx); fourth <- got{c, err} }()
	for p.waiting() != 1 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if g := waitFor(t, fourth, "the cancelled request"); !errors.Is(g.err, context.Canceled) {
		t.Fatalf("cancelled while queued: %v", g.err)
	}
	if n := p.waiting(); n != 0 {
		t.Fatalf("%d waiting after the cancel, want 0", n)
	}

	// A discarded connection hands its slot over: the waiter dials.
	fifth := make(chan got, 1)
	go func() { c, err := p.acquire(ctx); fifth <- got{c, err} }()
	for p.waiting() != 1 {
		time.Sleep(time.Millisecond)
	}
	p.release(held[1], false)
	if g := waitFor(t, fifth, "the request after a discard"); g.err != nil || g.c != nil {
		t.Fatalf("after a discard: %v %v, want a slot to dial", g.c, g.err)
	}
	if p.open != 2 {
		t.Errorf("%d slots counted, want 2", p.open)
	}

	// The queue timeout.
	p.queueTimeout = 50 * time.Millisecond
	start := time.Now()
	if _, err := p.acquire(ctx); !errors.Is(err, ErrQueueTimeout) || time.Since(start) < 50*time.Millisecond {
		t.Errorf("queue timeout: %v after %v", err, time.Since(start))
	}
}

func (p *originPool) waiting() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.waiters)
}

// TestRequestBodyBuffering: a body is read ahead into memory up to the
// buffer size, then relayed whole and unchanged (across several buffers),
// with the rest of a larger body streamed after it; past the maximum size
// the read fails with ErrBodyTooLarge.
func TestRequestBodyBuffering(t *testing.T) {
	t.Parallel()
	data := make([]byte, 150<<10)
	for i := range data {
		data[i] = byte(i * 7)
	}
	for _, tc := range []struct {
		name      string
		size, buf int
		max       int64
		wantWhole bool
		wantErr   error
	}{
		{"fits", 50 << 10, 64 << 10, 0, true, nil},
		{"exactly the buffer", 64 << 10, 64 << 10, 0, false, nil},
		{"streams past the buffer", 150 << 10, 40 << 10, 0, false, nil},
		{"at the limit", 100 << 10, 200 << 10, 100 << 10, true, nil},
		{"over the limit while buffering", 100<<10 + 1, 200 << 10, 100 << 10, false, ErrBodyTooLarge},
		{"over the limit after the buffer", 150 << 10, 10 << 10, 100 << 10, false, ErrBodyTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newRequestBody(io.NopCloser(iotestHalf(bytes.NewReader(data[:tc.size]))), tc.max)
			defer b.free()
			err := b.fill(tc.buf)
			if err == nil {
				if b.whole() != tc.wantWhole {
					t.Errorf("whole = %v, want %v", b.whole(), tc.wantWhole)
				}
				var got []byte
				got, err = io.ReadAll(b)
				if err == nil && !bytes.Equal(got, data[:tc.size]) {
					t.Errorf("relayed %d bytes, not the %d sent", len(got), tc.size)
				}
			}
			if !errors.Is(err, tc.wantErr) {
				t.Errorf("err = %v, want %v", err, tc.wantErr)
			}
		})
	}
}

// iotestHalf returns a reader that returns at most 1000 bytes a read, as
// a client's body arrives.
func iotestHalf(r io.Reader) io.Reader { return &smallReads{r} }

type smallReads struct{ r io.Reader }

func (s *smallReads) Read(p []byte) (int, error) {
	if len(p) > 1000 {
		p = p[:1000]
	}
	return s.r.Read(p)
}

// TestBodyTooLargeBeforeDialing: a Content-Length over the maximum fails
// before the origin is contacted.
func TestBodyTooLargeBeforeDialing(t *testing.T) {
	t.Parallel()
	l := listen(t)
	u, _ := url.Parse("http://" + l.Addr().String())
	o := New(Config{URL: u, ConnectTimeout: time.Second, ResponseTimeout: time.Second, MaxBodySize: 10})
	t.Cleanup(o.Close)
	r := httptest.NewRequest("POST", "https://edge.example/", strings.NewReader(strings.Repeat("x", 11)))
	if _, err := o.RoundTrip(context.Background(), r, &Outbound{}); !errors.Is(err, ErrBodyTooLarge) {
		t.Fatalf("RoundTrip: %v, want ErrBodyTooLarge", err)
	}
	if o.Open() != 0 {
		t.Errorf("%d connections opened", o.Open())
	}
}

// TestExchangeCancelledHTTPS: the same with an https origin: the TLS
// connection is broken at once, without waiting on its close_notify.
func TestExchangeCancelledHTTPS(t *testing.T) {
	t.Parallel()
	arrived, closed := make(chan struct{}, 1), make(chan time.Time, 1)
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		select {
		case <-r.Context().Done(): // the connection closed
			closed <- time.Now()
		case <-time.After(20 * time.Second):
		}
	}))
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	tc := srv.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
	tc.ServerName = "example.com"
	o := New(Config{URL: u, TLS: tc, ConnectTimeout: time.Second, ResponseTimeout: 30 * time.Second})
	t.Cleanup(o.Close)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := o.RoundTrip(ctx, httptest.NewRequest("GET", "https://edge.example/slow", nil), &Outbound{})
		errc <- err
	}()
	waitFor(t, arrived, "the request at the origin")
	cancelled := time.Now()
	cancel()
	if err := waitFor(t, errc, "RoundTrip to return"); !errors.Is(err, context.Canceled) {
		t.Errorf("RoundTrip: %v, want context.Canceled", err)
	}
	if d := waitFor(t, closed, "the origin to see the connection close").Sub(cancelled); d > time.Second {
		t.Errorf("the origin connection closed %v after the cancel", d)
	}
}
