package server

import (
	"net/http"

	"github.com/edgectl/edgectl/pkg/state"
)

// OnEventHandled makes the server call f after it has handled each event of
// its watched store, so that a test can wait for an event instead of
// sleeping.
func OnEventHandled(cfg *Config, f func(state.WatchEvent)) { cfg.handled = f }

// ServeWith makes the server answer the edge's requests with h instead of
// its runtime: the connection handling (TLS, HTTP/1.x, HTTP/2, timeouts,
// limits, cancellation) stays the server's.
func ServeWith(cfg *Config, h http.Handler) { cfg.handler = h }

// ConnsIdled reports how many times a connection went idle and the server
// let the edge forget what it kept for it (connIdle).
func (s *Server) ConnsIdled() int64 { return s.idled.Load() }

// Releases reports how many times the server returned memory to the
// system after a quiet period (release.go).
func (s *Server) Releases() int64 { return s.releases.Load() }
