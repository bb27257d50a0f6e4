package server_test

import (
	"io"
	"net/http"
	"net/http/httptrace"
	"testing"
	"time"
)

// TestIdleKeepAliveReused: a kept-alive mTLS connection idle long enough
// to wait on its socket (with no buffers, h1's waitIdle; h2's park) serves
// its next requests through the edge, reused rather than replaced, over
// HTTP/1.1 and HTTP/2; each idle period lets the edge forget what it kept
// for the connection (the servers' ConnIdle hook, once per period).
func TestIdleKeepAliveReused(t *testing.T) {
	t.Parallel()
	for _, h2 := range []bool{false, true} {
		f := newFixture(t)
		r := start(t, f, nil)
		c := r.client(f, "api.test", f.valid, h2)
		for i, pause := range []time.Duration{0, 800 * time.Millisecond, 0, 800 * time.Millisecond} {
			idled := r.srv.ConnsIdled()
			time.Sleep(pause)
			if got := r.srv.ConnsIdled() - idled; (pause > 0) != (got == 1) {
				t.Fatalf("h2=%v request %d after %v: %d idle periods, want %d", h2, i, pause, got, min(1, int(pause)))
			}
			reused := false
			trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) { reused = info.Reused }}
			req, _ := http.NewRequest(http.MethodGet, "https://api.test/idle", nil)
			req = req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
			resp, err := c.Do(req)
			if err != nil {
				t.Fatalf("h2=%v request %d: %v", h2, i, err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || (resp.ProtoMajor == 2) != h2 {
				t.Fatalf("h2=%v request %d: %s %d", h2, i, resp.Proto, resp.StatusCode)
			}
			if i > 0 && !reused {
				t.Fatalf("h2=%v request %d after %v idle: a new connection, want the kept-alive one", h2, i, pause)
			}
		}
	}
}
