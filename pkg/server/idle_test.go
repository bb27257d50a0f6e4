package server_test

import (
	"io"
	"net/http"
	"net/http/httptrace"
	"testing"
	"time"
)

// TestIdleKeepAliveReused: a kept-alive mTLS connection idle long enough
// to wait on its socket (with no buffers, h1's waitIdle) serves its next
// requests through the edge, reused rather than replaced.
func TestIdleKeepAliveReused(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	r := start(t, f, nil)
	c := r.client(f, "api.test", f.valid, false)
	for i, pause := range []time.Duration{0, 600 * time.Millisecond, 0, 600 * time.Millisecond} {
		time.Sleep(pause)
		reused := false
		trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) { reused = info.Reused }}
		req, _ := http.NewRequest(http.MethodGet, "https://api.test/idle", nil)
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("request %d: status %d", i, resp.StatusCode)
		}
		if i > 0 && !reused {
			t.Fatalf("request %d after %v idle: a new connection, want the kept-alive one", i, pause)
		}
	}
}
