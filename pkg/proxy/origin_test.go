package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"
)

// fields is a Headers over name/value pairs.
type fields [][2]string

func (f fields) Len() int                         { return len(f) }
func (f fields) Field(i int) (name, value string) { return f[i][0], f[i][1] }

// TestRoundTripRelay drives the API the edge uses: the rewriting in
// Outbound reaches the origin, the response is relayed with its hop-by-hop
// headers removed, and the connection goes back to the pool.
func TestRoundTripRelay(t *testing.T) {
	t.Parallel()
	type seen struct {
		host, target, added, filtered string
		xff                           string
	}
	got := make(chan seen, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- seen{r.Host, r.RequestURI, r.Header.Get("X-Added"), r.Header.Get("X-Secret"), r.Header.Get("X-Forwarded-For")}
		w.Header().Set("Connection", "X-Hop")
		w.Header().Set("X-Hop", "1")
		w.Header().Set("X-Kept", "yes")
		io.WriteString(w, "hello")
	}))
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL + "/base")
	o := New(Config{URL: u, ConnectTimeout: time.Second, ResponseTimeout: time.Second})
	t.Cleanup(o.Close)

	r := httptest.NewRequest("GET", "https://edge.example/client/path?q=1", nil)
	r.RemoteAddr = "192.0.2.7:5555"
	r.Header.Set("X-Secret", "from the client")
	out := &Outbound{Host: "origin.example", Filter: []string{"X-Secret"}, Add: fields{{"X-Added", "by the edge"}}}
	x, err := o.RoundTrip(context.Background(), r, out)
	if err != nil {
		t.Fatal(err)
	}
	if x.Response.Header.Get("X-Hop") != "" || x.Response.Header.Get("Connection") != "" {
		t.Errorf("hop-by-hop headers kept: %v", x.Response.Header)
	}
	w := httptest.NewRecorder()
	keep, err := x.Relay(w)
	x.Release(keep)
	if err != nil || !keep {
		t.Fatalf("relay: keep %v, err %v", keep, err)
	}
	if w.Code != 200 || w.Body.String() != "hello" || w.Header().Get("X-Kept") != "yes" {
		t.Errorf("relayed %d %q %v", w.Code, w.Body.String(), w.Header())
	}
	s := <-got
	want := seen{"origin.example", "/base/client/path?q=1", "by the edge", "", "192.0.2.7"}
	if s != want {
		t.Errorf("origin saw %+v, want %+v", s, want)
	}
	if o.Idle() != 1 {
		t.Errorf("%d idle connections after release, want 1", o.Idle())
	}

	// A rewritten path replaces the client's, under the origin's path.
	out = &Outbound{Path: "/rewritten?a=b"}
	if x, err = o.RoundTrip(context.Background(), r, out); err != nil {
		t.Fatal(err)
	}
	keep, _ = x.Relay(httptest.NewRecorder())
	x.Release(keep)
	if s := <-got; s.target != "/base/rewritten?a=b" || s.host != u.Host {
		t.Errorf("rewritten: origin saw %+v", s)
	}
}

// TestRoundTripContext: a done context abandons the dial and the TLS
// handshake to the origin.
func TestRoundTripContext(t *testing.T) {
	t.Parallel()
	// An https origin that accepts and never answers the handshake.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { ln.Close(); close(done) })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { <-done; c.Close() }()
		}
	}()
	u, _ := url.Parse("https://" + ln.Addr().String())
	o := New(Config{URL: u, TLS: &tls.Config{ServerName: "origin.example"}, ConnectTimeout: 3 * time.Second, ResponseTimeout: 3 * time.Second})
	t.Cleanup(o.Close)
	r := httptest.NewRequest("GET", "https://edge.example/", nil)

	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := o.RoundTrip(canceled, r, &Outbound{}); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled context: got %v, want context.Canceled", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = o.RoundTrip(ctx, r, &Outbound{})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("stalled handshake: got %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("the handshake was abandoned after %v", d)
	}
}
