package server_test

import (
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/edgectl/edgectl/pkg/manifest"
	"github.com/edgectl/edgectl/pkg/server"
)

// slowOrigin is an origin that never answers: it reports each request's
// arrival, then whether the edge gave up on it (its connection closed)
// within 10 s.
type slowOrigin struct {
	*httptest.Server
	arrived, ended chan string
}

// useSlowOrigin makes the fixture's application proxy to a slowOrigin.
func useSlowOrigin(t *testing.T, f *fixture) *slowOrigin {
	t.Helper()
	o := &slowOrigin{arrived: make(chan string, 4), ended: make(chan string, 4)}
	o.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.arrived <- r.URL.Path
		select {
		case <-r.Context().Done():
			o.ended <- "cancelled"
		case <-time.After(10 * time.Second):
			o.ended <- "still waiting after 10s"
		}
	}))
	t.Cleanup(o.Close)
	snap := f.snapshot(1, "v1")
	for _, res := range snap.Resources {
		if app, ok := res.Spec.(*manifest.ApplicationSpec); ok {
			app.Origin.URL = o.URL
			app.Origin.ResponseTimeout = "30s"
		}
	}
	f.write(t, snap)
	return o
}

// TestOriginCancelledWhenClientGoes: when the client goes away, the
// edge's exchange with a slow origin ends promptly (the origin sees its
// connection closed): an HTTP/1.1 client that closes its connection, an
// HTTP/2 client that resets its stream or closes its connection.
func TestOriginCancelledWhenClientGoes(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	o := useSlowOrigin(t, f)
	r := start(t, f, nil)

	conn, err := tls.Dial("tcp", r.srv.Addr().String(), &tls.Config{ServerName: "open.test", RootCAs: f.root.Pool(), NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(conn, "GET /h1 HTTP/1.1\r\nHost: open.test\r\n\r\n")
	wait(t, o.arrived, "/h1", 5*time.Second)
	conn.Close()
	wait(t, o.ended, "cancelled", 2*time.Second)

	c := dialH2(t, f, r, "open.test")
	c.request(1, "GET", "open.test", "/h2", true)
	wait(t, o.arrived, "/h2", 5*time.Second)
	c.fr.WriteRSTStream(1, http2.ErrCodeCancel)
	wait(t, o.ended, "cancelled", 2*time.Second)

	c.request(3, "GET", "open.test", "/h2-close", true)
	wait(t, o.arrived, "/h2-close", 5*time.Second)
	c.conn.Close()
	wait(t, o.ended, "cancelled", 2*time.Second)
}

// TestOriginCancelledAfterShutdownGrace: an exchange with a slow origin
// still running when the shutdown timeout ends is cancelled: the origin
// sees its connection closed.
func TestOriginCancelledAfterShutdownGrace(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	o := useSlowOrigin(t, f)
	r := start(t, f, func(c *server.Config) { c.ShutdownTimeout = 300 * time.Millisecond })
	conn, err := tls.Dial("tcp", r.srv.Addr().String(), &tls.Config{ServerName: "open.test", RootCAs: f.root.Pool(), NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "GET /h1 HTTP/1.1\r\nHost: open.test\r\n\r\n")
	wait(t, o.arrived, "/h1", 5*time.Second)
	c := dialH2(t, f, r, "open.test")
	c.request(1, "GET", "open.test", "/h2", true)
	wait(t, o.arrived, "/h2", 5*time.Second)
	began := time.Now()
	r.cancel()
	wait(t, o.ended, "cancelled", 3*time.Second)
	wait(t, o.ended, "cancelled", 3*time.Second)
	if took := time.Since(began); took < 250*time.Millisecond {
		t.Fatalf("origin exchanges cancelled after %v, before the shutdown timeout (300ms)", took)
	}
}
