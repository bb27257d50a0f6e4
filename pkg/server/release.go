package server

import (
	"context"
	"runtime/debug"
	"time"

	"github.com/edgectl/edgectl/pkg/edge"
)

// connIdle is both servers' hook for a connection that waited 250 ms for
// its next request: the edge forgets what it keeps for that connection's
// requests (edge.ConnIdle).
func (s *Server) connIdle(ctx context.Context) {
	s.idled.Add(1)
	edge.ConnIdle(ctx)
}

// releaseWhenQuiet returns the memory a burst left behind once the edge
// goes quiet: after QuietRelease without a new connection, request or
// reload (and after the start), it collects garbage and returns the freed
// pages to the system, once per quiet period.
//
// Without it, a Go process keeps the garbage of a burst (thousands of
// handshakes, say) until its next collection, which an idle process runs
// only after two minutes, and its resident set stays at up to twice its
// live heap meanwhile; nginx frees its memory at once. With it, an edge
// left with 2,000 idle connections drops the burst's garbage within
// seconds (129 MB resident before, 89 MB after: what remains is the live
// heap, the stacks and the spans live objects keep partly used). A quiet
// edge has the CPU for the collection; a busy one never gets here.
func (s *Server) releaseWhenQuiet(ctx context.Context) {
	quiet := s.cfg.QuietRelease
	if quiet < 0 {
		return
	}
	tick := min(quiet/4, time.Second)
	t := time.NewTicker(tick)
	defer t.Stop()
	// The start (its compile) left garbage too: released is false.
	seen, since, released := s.activity.Load(), time.Now(), false
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			if n := s.activity.Load(); n != seen {
				seen, since, released = n, now, false
				continue
			}
			if !released && now.Sub(since) >= quiet {
				debug.FreeOSMemory()
				s.releases.Add(1)
				released = true
			}
		}
	}
}
