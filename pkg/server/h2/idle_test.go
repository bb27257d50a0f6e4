package h2_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/edgectl/edgectl/internal/park"
	"github.com/edgectl/edgectl/pkg/server/h2"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// waitParked waits until srv has want connections parked (waiting for
// their client without a read buffer), or fails.
func waitParked(t *testing.T, srv *h2.Server, want int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for srv.Parked() != want {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections parked, want %d", srv.Parked(), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestIdleConnectionParks: a connection without a stream for a moment
// gives its read buffer back and waits on its socket; a request then is
// served, and after it (and after a PING, which opens no stream) the
// connection parks again. Without the settle, no connection ever parks.
func TestIdleConnectionParks(t *testing.T) {
	t.Parallel()
	waits(t, func(t *testing.T, serve func(testing.TB, *h2.Server) string) {
		srv := &h2.Server{IdleTimeout: time.Minute, ReadHeaderTimeout: time.Minute, Handler: http.HandlerFunc(echo)}
		addr := serve(t, srv)
		c := dialRaw(t, addr)
		waitParked(t, srv, 1)
		for i, id := range []uint32{1, 3} {
			c.headers(id, true, ":method", "GET", ":scheme", "https", ":authority", "h2.test", ":path", "/")
			if got := c.outcome(id); got != "status 200" {
				t.Fatalf("request %d: %s", i, got)
			}
			waitParked(t, srv, 1)
		}
		c.fr.WritePing(false, [8]byte{1})
		waitParked(t, srv, 0)
		waitParked(t, srv, 1)
		c.headers(5, true, ":method", "GET", ":scheme", "https", ":authority", "h2.test", ":path", "/")
		if got := c.outcome(5); got != "status 200" {
			t.Fatalf("request after the PING: %s", got)
		}
	})
}

// TestIdleSplitFrames: frames split around the settle reach the server
// whole: the preface, whose first bytes wake the parked connection and
// whose rest comes after the next settle; a HEADERS frame likewise; and
// one whose first byte comes right after a response, before the
// connection parked, and the rest after the settle.
func TestIdleSplitFrames(t *testing.T) {
	t.Parallel()
	waits(t, func(t *testing.T, serve func(testing.TB, *h2.Server) string) {
		srv := &h2.Server{IdleTimeout: time.Minute, ReadHeaderTimeout: time.Minute, Handler: http.HandlerFunc(echo)}
		addr := serve(t, srv)
		conn := dialTLS(t, addr)
		waitParked(t, srv, 1) // before the preface
		var buf bytes.Buffer
		fr := http2.NewFramer(&buf, conn)
		io.WriteString(&buf, http2.ClientPreface)
		fr.WriteSettings()
		preface := bytes.Clone(buf.Bytes())
		conn.Write(preface[:10])
		time.Sleep(400 * time.Millisecond) // the settle interrupts in the middle
		conn.Write(preface[10:])
		c := &rawClient{t: t, conn: conn, fr: http2.NewFramer(conn, conn), settings: map[http2.SettingID]uint32{}}
		c.enc = hpack.NewEncoder(&c.hbuf)
		c.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
		c.fr.WriteSettingsAck()
		for i, split := range []int{5, 1} {
			id := uint32(2*i + 1)
			if i == 0 {
				waitParked(t, srv, 1)
			}
			buf.Reset()
			w := http2.NewFramer(&buf, nil)
			w.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: c.block(":method", "GET", ":scheme", "https", ":authority", "h2.test", ":path", "/"), EndStream: true, EndHeaders: true})
			frame := bytes.Clone(buf.Bytes())
			conn.Write(frame[:split])
			time.Sleep(400 * time.Millisecond)
			conn.Write(frame[split:])
			if got := c.outcome(id); got != "status 200" {
				t.Fatalf("HEADERS split after %d bytes: %s", split, got)
			}
		}
	})
}

// TestIdleTimeoutWhileParked: a parked connection still ends at
// IdleTimeout, with a GOAWAY, not sooner.
func TestIdleTimeoutWhileParked(t *testing.T) {
	t.Parallel()
	waits(t, func(t *testing.T, serve func(testing.TB, *h2.Server) string) {
		const idle = 800 * time.Millisecond
		srv := &h2.Server{IdleTimeout: idle, ReadHeaderTimeout: time.Minute, Handler: http.HandlerFunc(echo)}
		addr := serve(t, srv)
		c := dialRaw(t, addr)
		c.headers(1, true, ":method", "GET", ":scheme", "https", ":authority", "h2.test", ":path", "/")
		if got := c.outcome(1); got != "status 200" {
			t.Fatal(got)
		}
		start := time.Now()
		waitParked(t, srv, 1)
		evs := c.read(5*time.Second, isEnd)
		took := time.Since(start)
		if ev := last(evs); ev.kind != "goaway" || ev.code != http2.ErrCodeNo {
			t.Fatalf("got %+v, want GOAWAY NO_ERROR", evs)
		}
		if took < idle-100*time.Millisecond || took > idle+time.Second {
			t.Fatalf("GOAWAY after %v, want about %v", took, idle)
		}
	})
}

// TestTimerQuietWhileBusy: a connection of a server without timeouts
// runs its timer only for the settle: not while a stream is open, however
// long. (Re-armed every millisecond, it would run hundreds of times.)
func TestTimerQuietWhileBusy(t *testing.T) {
	t.Parallel()
	waits(t, func(t *testing.T, serve func(testing.TB, *h2.Server) string) {
		release := make(chan struct{})
		srv := &h2.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			<-release
		})}
		addr := serve(t, srv)
		c := dialRaw(t, addr)
		c.headers(1, true, ":method", "GET", ":scheme", "https", ":authority", "h2.test", ":path", "/")
		time.Sleep(100 * time.Millisecond)
		before := srv.TimerRuns()
		time.Sleep(600 * time.Millisecond)
		if runs := srv.TimerRuns() - before; runs > 2 {
			t.Fatalf("the timer ran %d times in 600 ms while a stream was open", runs)
		}
		close(release)
		if got := c.outcome(1); got != "status 200" {
			t.Fatal(got)
		}
		waitParked(t, srv, 1) // idle again: the settle still comes
	})
}

// TestConnIdle: ConnIdle is called with the connection's context each time
// the connection parks, and not while its streams follow each other
// sooner than the settle.
func TestConnIdle(t *testing.T) {
	t.Parallel()
	waits(t, func(t *testing.T, serve func(testing.TB, *h2.Server) string) {
		type key struct{}
		calls := make(chan any, 16)
		srv := &h2.Server{IdleTimeout: time.Minute, ReadHeaderTimeout: time.Minute, Handler: http.HandlerFunc(echo),
			ConnContext: func(ctx context.Context, c net.Conn) context.Context {
				return context.WithValue(ctx, key{}, "conn")
			},
			ConnIdle: func(ctx context.Context) { calls <- ctx.Value(key{}) },
		}
		addr := serve(t, srv)
		c := dialRaw(t, addr)
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
		called("before the first stream")
		for i, id := range []uint32{1, 3, 5, 7, 9} {
			c.headers(id, true, ":method", "GET", ":scheme", "https", ":authority", "h2.test", ":path", "/")
			if got := c.outcome(id); got != "status 200" {
				t.Fatalf("request %d: %s", i, got)
			}
			if i < 4 {
				time.Sleep(20 * time.Millisecond)
			}
		}
		if n := len(calls); n != 0 {
			t.Fatalf("ConnIdle called %d times between streams 20 ms apart", n)
		}
		called("after the streams")
		waitParked(t, srv, 1)
	})
}

// TestParkedWithoutGoroutines: with a Parker, idle connections give their
// reading goroutines up; each one's next stream is served on the same
// connection; a header timeout still closes a connection parked before
// its preface; and Shutdown sends every parked connection GOAWAY and
// closes it, done being called once per connection.
func TestParkedWithoutGoroutines(t *testing.T) {
	if _, err := park.New(); err != nil {
		t.Skipf("no parker here: %v", err)
	}
	srv := &h2.Server{IdleTimeout: time.Minute, ReadHeaderTimeout: time.Minute, Handler: http.HandlerFunc(echo)}
	addr := serve(t, srv)
	const n = 10
	var clients []*rawClient
	for i := range n {
		c := dialRaw(t, addr)
		c.headers(1, true, ":method", "GET", ":scheme", "https", ":authority", "h2.test", ":path", "/")
		if got := c.outcome(1); got != "status 200" {
			t.Fatalf("connection %d: %s", i, got)
		}
		clients = append(clients, c)
	}
	waitParked(t, srv, n)
	// No goroutine of package h2 is left for them (h2Goroutines counts
	// connections' and streams' goroutines).
	deadline := time.Now().Add(5 * time.Second)
	for len(h2Goroutines()) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections parked, %d goroutines of h2 left:\n%s", n, len(h2Goroutines()), strings.Join(h2Goroutines(), "\n\n"))
		}
		time.Sleep(10 * time.Millisecond)
	}
	for i, c := range clients {
		c.headers(3, true, ":method", "GET", ":scheme", "https", ":authority", "h2.test", ":path", "/")
		if got := c.outcome(3); got != "status 200" {
			t.Fatalf("connection %d after its park: %s", i, got)
		}
	}
	waitParked(t, srv, n)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown with %d parked connections: %v", n, err)
	}
	for i, c := range clients {
		evs := c.read(5*time.Second, func(ev event) bool { return ev.kind == "closed" })
		if !slices.ContainsFunc(evs, func(ev event) bool { return ev.kind == "goaway" && ev.code == http2.ErrCodeNo }) {
			t.Errorf("connection %d: %+v, want GOAWAY NO_ERROR then the close", i, evs)
		}
	}
}

// TestHeaderTimeoutWhileParked: a connection that sends nothing after its
// handshake parks, and still closes at ReadHeaderTimeout.
func TestHeaderTimeoutWhileParked(t *testing.T) {
	t.Parallel()
	waits(t, func(t *testing.T, serve func(testing.TB, *h2.Server) string) {
		srv := &h2.Server{ReadHeaderTimeout: 800 * time.Millisecond, IdleTimeout: time.Minute, Handler: http.HandlerFunc(echo)}
		conn := dialTLS(t, serve(t, srv))
		start := time.Now()
		waitParked(t, srv, 1)
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		io.Copy(io.Discard, conn) // the server's SETTINGS, then the close
		if took := time.Since(start); took < 600*time.Millisecond || took > 3*time.Second {
			t.Fatalf("closed after %v, want about 800ms (ReadHeaderTimeout)", took)
		}
		deadline := time.Now().Add(5 * time.Second)
		for srv.Open() != 0 {
			if time.Now().After(deadline) {
				t.Fatalf("%d connections open after the header timeout", srv.Open())
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
}

// TestIdleDropsReadFramer: a connection waiting idle holds no read framer
// (x/net's keeps a buffer the size of the largest frame it read: 16 KB
// after this test's upload), and the framer it makes when the client
// comes back decodes header fields the client indexed before: the HPACK
// decoder's table is the connection's, not the framer's.
func TestIdleDropsReadFramer(t *testing.T) {
	t.Parallel()
	// The connection's TLS state, let go while it waits idle too, is
	// made again for the next request.
	withTLS := func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil || !r.TLS.HandshakeComplete || r.TLS.NegotiatedProtocol != "h2" {
			http.Error(w, "no TLS state", http.StatusInternalServerError)
			return
		}
		echo(w, r)
	}
	waits(t, func(t *testing.T, serve func(testing.TB, *h2.Server) string) {
		srv := &h2.Server{IdleTimeout: time.Minute, ReadHeaderTimeout: time.Minute, Handler: http.HandlerFunc(withTLS)}
		c := dialRaw(t, serve(t, srv))
		fields := []string{":method", "POST", ":scheme", "https", ":authority", "h2.test", ":path", "/upload", "x-partner", "acme-bank"}
		c.headers(1, false, fields...)
		c.fr.WriteData(1, true, bytes.Repeat([]byte("u"), 16384))
		if got := c.outcome(1); got != "status 200" {
			t.Fatalf("upload: %s", got)
		}
		waitParked(t, srv, 1)
		if n := srv.ReadFramers(); n != 0 {
			t.Fatalf("%d read framers held by an idle connection", n)
		}
		// The same fields again: the client's encoder sends most of them
		// as indexes into the table the first request filled.
		c.headers(3, true, fields...)
		if got := c.outcome(3); got != "status 200" {
			t.Fatalf("request after the idle period: %s", got)
		}
		if n := srv.ReadFramers(); n != 1 {
			t.Errorf("%d read framers held by the connection serving again, want 1", n)
		}
	})
}

// TestCloseEndsParkedConnections: Close ends parked connections at once
// (closing a parked socket wakes nobody: Close cancels the parks), and
// they are no longer counted open.
func TestCloseEndsParkedConnections(t *testing.T) {
	t.Parallel()
	waits(t, func(t *testing.T, serve func(testing.TB, *h2.Server) string) {
		srv := &h2.Server{IdleTimeout: time.Minute, ReadHeaderTimeout: time.Minute, Handler: http.HandlerFunc(echo)}
		addr := serve(t, srv)
		const n = 5
		var clients []*rawClient
		for range n {
			clients = append(clients, dialRaw(t, addr))
		}
		waitParked(t, srv, n)
		srv.Close()
		for i, c := range clients {
			if ev := last(c.read(5*time.Second, func(ev event) bool { return ev.kind == "closed" })); ev.kind != "closed" {
				t.Errorf("connection %d after Close: %+v, want it closed", i, ev)
			}
		}
		deadline := time.Now().Add(5 * time.Second)
		for srv.Open() != 0 {
			if time.Now().After(deadline) {
				t.Fatalf("%d connections still open after Close", srv.Open())
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
}
