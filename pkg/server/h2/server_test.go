package h2_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/edgectl/edgectl/pkg/server/h2"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// echo answers with what it saw of the request: method, host, URI, the
// request's TLS and protocol, its body's digest and length, and its
// trailers.
func echo(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "body: "+err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("X-Method", r.Method)
	w.Header().Set("X-Host", r.Host)
	w.Header().Set("X-Uri", r.RequestURI)
	w.Header().Set("X-Proto", r.Proto)
	w.Header().Set("X-Tls", fmt.Sprint(r.TLS != nil && r.TLS.HandshakeComplete))
	w.Header().Set("X-Remote", fmt.Sprint(strings.HasPrefix(r.RemoteAddr, "127.0.0.1:")))
	w.Header().Set("X-Trailer", r.Trailer.Get("X-Sum"))
	fmt.Fprintf(w, "%d %x", len(body), sha256.Sum256(body))
}

// TestRequestsAndResponses: an ordinary client (x/net/http2's Transport)
// gets its requests to the handler as net/http shapes them and the
// responses back, bodies of every size, concurrently on one connection.
func TestRequestsAndResponses(t *testing.T) {
	t.Parallel()
	addr := serve(t, &h2.Server{Handler: http.HandlerFunc(echo)})
	c := client(t, addr)
	sizes := []int{0, 1, 100, 8 << 10, 8<<10 + 1, 70 << 10, 3 << 20}
	var wg sync.WaitGroup
	for _, size := range sizes {
		for _, method := range []string{"GET", "POST"} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				body := bytes.Repeat([]byte("abcdefgh"), size/8+1)[:size]
				var rd io.Reader
				if method == "POST" {
					rd = bytes.NewReader(body)
				} else {
					body = nil
				}
				req, _ := http.NewRequest(method, "https://"+addr+"/p?q=1", rd)
				resp, err := c.Do(req)
				if err != nil {
					t.Errorf("%s %d: %v", method, size, err)
					return
				}
				got, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				want := fmt.Sprintf("%d %x", len(body), sha256.Sum256(body))
				h := resp.Header
				if diff := cmp.Diff([]string{"200", method, addr, "/p?q=1", "HTTP/2.0", "true", "true", want},
					[]string{fmt.Sprint(resp.StatusCode), h.Get("X-Method"), h.Get("X-Host"), h.Get("X-Uri"), h.Get("X-Proto"), h.Get("X-Tls"), h.Get("X-Remote"), string(got)}); diff != "" {
					t.Errorf("%s %d (-want +got):\n%s", method, size, diff)
				}
				if resp.Header.Get("Date") == "" || resp.ContentLength != int64(len(want)) {
					t.Errorf("%s %d: Date %q, Content-Length %d", method, size, resp.Header.Get("Date"), resp.ContentLength)
				}
			}()
		}
	}
	wg.Wait()
}

// TestLargeResponse: a response larger than every window and buffer,
// written in pieces of every size, arrives whole.
func TestLargeResponse(t *testing.T) {
	t.Parallel()
	const size = 5 << 20
	addr := serve(t, &h2.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b := bytes.Repeat([]byte("0123456789"), size/10)
		for i, n := 0, 1; i < len(b); n = n*3 + 1 {
			if i+n > len(b) {
				n = len(b) - i
			}
			w.Write(b[i : i+n])
			i += n
		}
	})})
	resp, err := client(t, addr).Get("https://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || !bytes.Equal(got, bytes.Repeat([]byte("0123456789"), size/10)) {
		t.Fatalf("read %d bytes, %v", len(got), err)
	}
}

// TestTrailers: request trailers reach r.Trailer when declared; response
// trailers go out when declared in the Trailer header (values set after a
// flush, as the edge's proxy sets them) or named with http.TrailerPrefix.
func TestTrailers(t *testing.T) {
	t.Parallel()
	addr := serve(t, &h2.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Trailer", "X-Declared")
		w.Header().Set("X-Got", r.Trailer.Get("X-Sum"))
		w.Write([]byte("body"))
		w.(http.Flusher).Flush()
		w.Header().Set("X-Declared", "d")
		w.Header().Set(http.TrailerPrefix+"X-Undeclared", "u")
		// A trailer whose name is no token is dropped, as an invalid
		// header name is: on the wire it would fail the client's stream.
		w.Header()[http.TrailerPrefix+"Bad Name"] = []string{"x"}
	})})
	req, _ := http.NewRequest("POST", "https://"+addr+"/", io.MultiReader(strings.NewReader("abc")))
	req.Trailer = http.Header{"X-Sum": {"42"}}
	resp, err := client(t, addr).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if diff := cmp.Diff([]string{"body", "42", "d", "u"}, []string{string(body), resp.Header.Get("X-Got"), resp.Trailer.Get("X-Declared"), resp.Trailer.Get("X-Undeclared")}); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
	if len(resp.Trailer) != 2 {
		t.Fatalf("trailers %v, want X-Declared and X-Undeclared only", resp.Trailer)
	}
}

// TestContextCancelledOnReset: a stream reset by the client cancels its
// request's context; so does the connection's close.
func TestContextCancelledOnReset(t *testing.T) {
	t.Parallel()
	started := make(chan struct{}, 2)
	cancelled := make(chan error, 2)
	addr := serve(t, &h2.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		// A context derived from the request's is cancelled with it.
		derived, cancel := context.WithCancel(r.Context())
		defer cancel()
		select {
		case <-derived.Done():
			err := r.Context().Err()
			if cause := context.Cause(r.Context()); cause != err {
				err = fmt.Errorf("Err() %v but Cause() %v", err, cause)
			}
			cancelled <- err
		case <-time.After(5 * time.Second):
			cancelled <- nil
		}
	})})
	c := dialRaw(t, addr)
	c.get(1, "/")
	<-started
	c.fr.WriteRSTStream(1, 0x8)
	if err := <-cancelled; err != context.Canceled {
		t.Fatalf("after RST_STREAM the context says %v", err)
	}
	c.get(3, "/")
	<-started
	c.conn.Close()
	if err := <-cancelled; err != context.Canceled {
		t.Fatalf("after the connection's close the context says %v", err)
	}
}

// TestShutdown: Shutdown sends GOAWAY NO_ERROR naming the last stream,
// lets the stream in flight finish, ignores streams opened after it, and
// returns once the connection is closed; an idle connection closes at
// once. Close cancels what is still running.
func TestShutdown(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	started := make(chan struct{}, 4)
	srv := &h2.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		select {
		case <-release:
			w.Write([]byte("finished"))
		case <-r.Context().Done():
		}
	})}
	addr := serve(t, srv)
	busy, idle := dialRaw(t, addr), dialRaw(t, addr)
	busy.get(1, "/")
	<-started
	done := make(chan error, 1)
	go func() { done <- srv.Shutdown(context.Background()) }()
	if evs := busy.read(3*time.Second, func(ev event) bool { return ev.kind == "goaway" }); last(evs).kind != "goaway" || last(evs).code != 0 || last(evs).stream != 1 {
		t.Fatalf("no GOAWAY NO_ERROR naming stream 1: %+v", evs)
	}
	if ev := last(idle.read(3*time.Second, func(ev event) bool { return ev.kind == "closed" })); ev.kind != "closed" {
		t.Fatalf("the idle connection: %+v", ev)
	}
	busy.get(3, "/")
	close(release)
	evs := busy.read(3*time.Second, func(ev event) bool { return ev.kind == "closed" })
	var body string
	for _, ev := range evs {
		if ev.stream == 3 {
			t.Fatalf("a stream opened after the GOAWAY was served: %+v", ev)
		}
		body += string(ev.data)
	}
	if body != "finished" || last(evs).kind != "closed" {
		t.Fatalf("the stream in flight: %q, %+v", body, evs)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Shutdown did not return")
	}
	if n := srv.Open(); n != 0 {
		t.Fatalf("%d connections open after Shutdown", n)
	}
}

// TestCloseCancels: Close closes the connections and cancels the
// requests in flight.
func TestCloseCancels(t *testing.T) {
	t.Parallel()
	cancelled := make(chan struct{})
	started := make(chan struct{})
	srv := &h2.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-r.Context().Done()
		close(cancelled)
	})}
	addr := serve(t, srv)
	c := dialRaw(t, addr)
	c.get(1, "/")
	<-started
	srv.Close()
	select {
	case <-cancelled:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not cancel the request")
	}
	if ev := last(c.read(3*time.Second, func(ev event) bool { return ev.kind == "closed" })); ev.kind != "closed" {
		t.Fatalf("the connection: %+v", ev)
	}
}

// TestConnContextCancelled: each stream's context is derived from
// ConnContext's: when that context is cancelled, the streams open then
// are cancelled, and so is a stream opened after.
func TestConnContextCancelled(t *testing.T) {
	t.Parallel()
	parent, cancel := context.WithCancel(context.Background())
	defer cancel()
	started := make(chan struct{}, 2)
	cancelled := make(chan error, 2)
	addr := serve(t, &h2.Server{
		ConnContext: func(context.Context, net.Conn) context.Context { return parent },
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			started <- struct{}{}
			select {
			case <-r.Context().Done():
				cancelled <- r.Context().Err()
			case <-time.After(5 * time.Second):
				cancelled <- nil
			}
		}),
	})
	c := dialRaw(t, addr)
	c.get(1, "/")
	<-started
	cancel()
	if err := <-cancelled; err != context.Canceled {
		t.Fatalf("after ConnContext's cancellation the open stream's context says %v", err)
	}
	c.get(3, "/")
	<-started
	if err := <-cancelled; err != context.Canceled {
		t.Fatalf("a stream opened after ConnContext's cancellation: its context says %v", err)
	}
}

// TestHandlerPanic: a handler's panic resets its stream (INTERNAL_ERROR),
// is logged (but http.ErrAbortHandler), and the connection serves on.
func TestHandlerPanic(t *testing.T) {
	t.Parallel()
	var logged atomic.Int64
	addr := serve(t, &h2.Server{ErrorLog: func(string, ...any) { logged.Add(1) }, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/panic":
			panic("boom")
		case "/abort":
			panic(http.ErrAbortHandler)
		}
		w.Write([]byte("ok"))
	})})
	c := dialRaw(t, addr)
	for _, tt := range []struct {
		id         uint32
		path, want string
	}{{1, "/panic", "rst INTERNAL_ERROR"}, {3, "/abort", "rst INTERNAL_ERROR"}, {5, "/", "status 200"}} {
		c.get(tt.id, tt.path)
		if got := c.outcome(tt.id); got != tt.want {
			t.Fatalf("stream %d: %s, want %s", tt.id, got, tt.want)
		}
	}
	if n := logged.Load(); n != 1 {
		t.Fatalf("%d panics logged, want 1", n)
	}
}

// TestConnectionClose: a response with "Connection: close" (the edge's
// answer when a domain left the configuration) is sent without that
// field, and the connection ends gracefully: GOAWAY NO_ERROR after it.
func TestConnectionClose(t *testing.T) {
	t.Parallel()
	addr := serve(t, &h2.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		w.WriteHeader(http.StatusMisdirectedRequest)
	})})
	c := dialRaw(t, addr)
	c.get(1, "/")
	evs := c.read(3*time.Second, func(ev event) bool { return ev.kind == "goaway" })
	var head event
	for _, ev := range evs {
		if ev.kind == "headers" {
			head = ev
		}
	}
	if head.status != "421" || last(evs).kind != "goaway" || last(evs).code != 0 {
		t.Fatalf("%+v", evs)
	}
	for _, f := range head.fields {
		if f.Name == "connection" {
			t.Fatalf("the connection field was sent: %+v", head.fields)
		}
	}
}

// TestResponsesNotIndexed: response fields are encoded without HPACK's
// dynamic table, as nginx encodes them: the first header block starts with
// a table size update to 0, and the next response's block, with the same
// fields, is as long as the first without that update (with the table,
// each repeated field would shrink to one byte). So neither end keeps the
// fields per connection.
func TestResponsesNotIndexed(t *testing.T) {
	t.Parallel()
	srv := &h2.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Request-Tag", "partner-app-42")
		io.WriteString(w, "{}")
	})}
	addr := serve(t, srv)
	c := dialRaw(t, addr)
	c.fr.ReadMetaHeaders = nil // the raw header blocks
	var blocks [][]byte
	for _, id := range []uint32{1, 3} {
		c.get(id, "/")
		c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		for done := false; !done; {
			f, err := c.fr.ReadFrame()
			if err != nil {
				t.Fatal(err)
			}
			switch f := f.(type) {
			case *http2.HeadersFrame:
				if f.StreamID == id {
					blocks = append(blocks, bytes.Clone(f.HeaderBlockFragment()))
					done = f.StreamEnded()
				}
			case *http2.DataFrame:
				done = f.StreamID == id && f.StreamEnded()
			}
		}
	}
	if len(blocks) != 2 || len(blocks[0]) == 0 || blocks[0][0] != 0x20 {
		t.Fatalf("header blocks %x; want two, the first starting with a table size update to 0 (0x20)", blocks)
	}
	if len(blocks[1]) != len(blocks[0])-1 {
		t.Errorf("second header block %d bytes, first %d: want the first's length less the update (nothing indexed)", len(blocks[1]), len(blocks[0]))
	}
	// Both decode to the same fields.
	dec := hpack.NewDecoder(4096, nil)
	for i, b := range blocks {
		fields, err := dec.DecodeFull(b)
		if err != nil {
			t.Fatalf("block %d: %v", i, err)
		}
		if len(fields) < 4 || fields[0].Value != "200" {
			t.Errorf("block %d: %v", i, fields)
		}
	}
}
