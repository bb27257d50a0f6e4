package server_test

import (
	"testing"
	"time"

	"github.com/edgectl/edgectl/pkg/server"
)

// TestQuietRelease: once quiet after its start, and after a quiet period
// that follows some traffic, the server returns freed memory to the system
// once; a quiet period without traffic releases nothing more; new traffic,
// then quiet, releases again. With QuietRelease negative, never.
func TestQuietRelease(t *testing.T) {
	t.Parallel()
	const quiet = 300 * time.Millisecond
	f := newFixture(t)
	r := start(t, f, func(c *server.Config) { c.QuietRelease = quiet })
	c := r.client(f, "open.test", nil, false)
	releases := func(want int64, within time.Duration) {
		t.Helper()
		deadline := time.Now().Add(within)
		for r.srv.Releases() != want {
			if time.Now().After(deadline) {
				t.Fatalf("%d releases, want %d", r.srv.Releases(), want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	releases(1, 3*time.Second) // the start's compile left garbage
	for round := int64(2); round <= 3; round++ {
		for range 5 {
			if status, _, _, err := get(c, "open.test", "/"); err != nil || status != 200 {
				t.Fatalf("request: %d %v", status, err)
			}
		}
		releases(round, 3*time.Second)
		time.Sleep(3 * quiet) // still quiet: nothing more to release
		releases(round, 0)
	}

	off := start(t, f, func(c *server.Config) { c.QuietRelease = -1 })
	oc := off.client(f, "open.test", nil, false)
	if status, _, _, err := get(oc, "open.test", "/"); err != nil || status != 200 {
		t.Fatalf("request: %d %v", status, err)
	}
	time.Sleep(3 * quiet)
	if got := off.srv.Releases(); got != 0 {
		t.Fatalf("%d releases with QuietRelease negative", got)
	}
}
