package server

import (
	"github.com/edgectl/edgectl/pkg/edge"
	"github.com/edgectl/edgectl/pkg/server/h2"
)

// HTTP/2 is served by package h2, with the timeouts and limits of
// HTTP/1.x, from the same settings:
//
//   - HeaderTimeout: a connection whose first request has not arrived
//     (its HEADERS and CONTINUATION frames complete) HeaderTimeout after
//     the handshake is closed.
//   - IdleTimeout: a connection with no stream open for IdleTimeout is
//     closed with GOAWAY, including one trickling a header block (which
//     opens no stream until it ends).
//   - BodyTimeout: a stream whose handler waits longer than BodyTimeout
//     for the next bytes of its request body is reset.
//   - WriteTimeout: a stream whose handler waits longer than WriteTimeout
//     for flow-control window is reset: a client whose window stays
//     closed (zero) stalls exactly these writes. A connection on which
//     nothing at all can be written for WriteTimeout is closed.
//   - MaxConcurrentStreams: the streams open on a connection (more are
//     refused), and the handlers running for it; a client that opens and
//     resets streams faster than they finish has its connection closed
//     with ENHANCE_YOUR_CALM (the rapid-reset defence).
//   - MaxHeaderBytes: a request's header list; a block far larger, or
//     CONTINUATION frames after an oversized one, close the connection.
//
// A reset stream's request context is cancelled, which ends the origin
// exchange. Timeouts are counted in edgectl_http2_timeouts_total, protocol
// errors and defences in edgectl_http2_errors_total.

// newH2 is the edge's HTTP/2 server.
func (s *Server) newH2() *h2.Server {
	return &h2.Server{
		Handler:              s.h1.Handler,
		ConnContext:          edge.ConnContext,
		ConnIdle:             s.connIdle,
		ReadHeaderTimeout:    s.cfg.HeaderTimeout,
		IdleTimeout:          s.cfg.IdleTimeout,
		BodyReadTimeout:      s.cfg.BodyTimeout,
		WriteTimeout:         s.cfg.WriteTimeout,
		MaxConcurrentStreams: s.cfg.MaxConcurrentStreams,
		MaxHeaderBytes:       s.cfg.MaxHeaderBytes,
		ErrorLog:             s.log.Error,
		CountError:           s.metrics.h2Error,
		CountTimeout:         func(timeout string) { s.metrics.h2Timeouts.WithLabelValues(timeout).Inc() },
	}
}
