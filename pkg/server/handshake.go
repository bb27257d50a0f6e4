package server

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/edgectl/edgectl/internal/rawio"
	"github.com/edgectl/edgectl/pkg/pki"
)

// acceptLoop accepts TCP connections until the listener is closed and
// serves each on its own goroutine. Over MaxConnections, a connection is
// closed at once: no handshake, no goroutine.
func (s *Server) acceptLoop(ln net.Listener) error {
	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			// Out of file descriptors and the like: wait, as net/http does.
			if backoff == 0 {
				backoff = 5 * time.Millisecond
			} else if backoff *= 2; backoff > time.Second {
				backoff = time.Second
			}
			s.log.Warn("accepting a connection failed; retrying", "error", err.Error(), "in", backoff.String())
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		// Only this goroutine adds connections: the check cannot race.
		if max := s.cfg.MaxConnections; max > 0 && s.metrics.open.Load() >= int64(max) {
			s.refuseConn(c)
			continue
		}
		s.metrics.open.Add(1)
		s.activity.Add(1)
		go s.serveConn(c)
	}
}

// refuseConn closes a connection over MaxConnections, counts it, and logs
// that the limit is reached (at most every 10 s).
func (s *Server) refuseConn(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		// A reset, not a close: nothing of the connection lingers.
		tc.SetLinger(0)
	}
	c.Close()
	s.metrics.refused.Inc()
	now := time.Now().UnixNano()
	if last := s.lastLimitWarning.Load(); now-last >= int64(10*time.Second) && s.lastLimitWarning.CompareAndSwap(last, now) {
		s.log.Warn("client connection limit reached: refusing new connections until some close (--max-connections)", "limit", s.cfg.MaxConnections)
	}
}

// serveConn runs the TLS handshake under its own deadline, then serves
// HTTP/2 (h2) or HTTP/1.x (h1) on the connection. The connection counts as
// open until it is closed.
//
// The handshake's frame is not on the stack while HTTP/1.x is served: an
// idle connection's goroutine waits on a stack small enough to shrink to
// 4 KB (h1's waitIdle), where it has to wait at all: with a Parker, an
// idle connection gives its goroutine up (ServeConnThen).
func (s *Server) serveConn(c net.Conn) {
	tc := s.handshake(c)
	if tc == nil {
		return
	}
	if negotiatedH2(tc) {
		s.h2.ServeConnThen(tc, s.connClosed)
	} else {
		s.h1.ServeConnThen(tc, s.connClosed)
	}
}

// negotiatedH2 reports whether the handshake chose HTTP/2 (ALPN), out of
// serveConn's frame: a ConnectionState is large.
//
//go:noinline
func negotiatedH2(tc *tls.Conn) bool { return tc.ConnectionState().NegotiatedProtocol == "h2" }

// handshake runs the TLS handshake of c under its own deadline. It returns
// nil when the handshake failed: then c is closed, counted and no longer
// open.
//
//go:noinline
func (s *Server) handshake(c net.Conn) *tls.Conn {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetKeepAlive(true)
		tc.SetKeepAlivePeriod(3 * time.Minute)
	}
	// Reads and writes from here on bypass the scheduler's system-call
	// bookkeeping (internal/rawio); deadlines and Close are c's.
	tc := tls.Server(rawio.Wrap(c), s.tlsConfig)
	if d := s.cfg.HandshakeTimeout; d > 0 {
		c.SetDeadline(time.Now().Add(d))
	}
	if err := tc.Handshake(); err != nil {
		var rh tls.RecordHeaderError
		if errors.As(err, &rh) && rh.Conn != nil && looksLikeHTTP(rh.RecordHeader[:]) {
			// As net/http does: a plain-HTTP client learns why.
			io.WriteString(rh.Conn, "HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n")
		}
		reason := handshakeReason(err, s.knownName(tc.ConnectionState().ServerName))
		s.countHandshake(reason)
		s.log.Debug("TLS handshake refused", "remote", c.RemoteAddr().String(), "reason", reason, "error", err.Error())
		c.Close()
		s.metrics.open.Add(-1)
		return nil
	}
	c.SetDeadline(time.Time{})
	return tc
}

// looksLikeHTTP reports whether the first bytes of a connection, read as a
// TLS record header, are the start of a plain HTTP request.
func looksLikeHTTP(hdr []byte) bool {
	switch string(hdr) {
	case "GET /", "HEAD ", "POST ", "PUT /", "OPTIO":
		return true
	}
	return false
}

// Reasons of failed handshakes, the reason label of
// edgectl_tls_handshake_errors_total.
const (
	ReasonNoCertificate    = "no_certificate"
	ReasonUnknownCA        = "unknown_ca"
	ReasonExpired          = "expired"
	ReasonRevoked          = "revoked"
	ReasonBadCertificate   = "bad_certificate"
	ReasonUnrecognizedName = "unrecognized_name"
	ReasonProtocol         = "protocol"
	ReasonNotTLS           = "not_tls"
	ReasonClientAlert      = "client_alert"
	ReasonClientClosed     = "client_closed"
	ReasonTimeout          = "timeout"
	ReasonOther            = "other"
)

// knownName reports whether a server name (SNI) selects a domain of the
// current runtime.
func (s *Server) knownName(sni string) bool { return s.cur.Load().Lookup(sni) != nil }

// handshakeReason sorts a failed handshake into one of the Reason
// constants, by the error's type wherever one exists: deadlines, plain
// HTTP, a client gone, a client's alert, edgectl's and Go's verification
// errors (pki.VerifyError, x509's), then an unknown server name (knownSNI
// false: the runtime refused it). crypto/tls gives no type to its other
// refusals (no client certificate, no common version or cipher suite), so
// those are sorted by their text.
func handshakeReason(err error, knownSNI bool) string {
	var (
		rh      tls.RecordHeaderError
		op      *net.OpError
		verr    *pki.VerifyError
		unknown x509.UnknownAuthorityError
		invalid x509.CertificateInvalidError
		cverr   *tls.CertificateVerificationError
	)
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return ReasonTimeout
	case errors.As(err, &rh):
		return ReasonNotTLS
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return ReasonClientClosed
	case errors.As(err, &op) && op.Op == "remote error":
		// The client refused the edge (for example its certificate).
		return ReasonClientAlert
	case errors.As(err, &verr):
		return verifyReason(verr)
	case errors.As(err, &unknown):
		return ReasonUnknownCA
	case errors.As(err, &invalid) && invalid.Reason == x509.Expired:
		return ReasonExpired
	case errors.As(err, &invalid), errors.As(err, &cverr):
		return ReasonBadCertificate
	case !knownSNI:
		return ReasonUnrecognizedName
	}
	return reasonFromText(err.Error())
}

// verifyReason sorts edgectl's own verification failures.
func verifyReason(e *pki.VerifyError) string {
	switch {
	case e.IsMissing():
		return ReasonNoCertificate
	case e.Reason == pki.ReasonExpired, e.Reason == pki.ReasonNotYetValid:
		return ReasonExpired
	case e.Reason == pki.ReasonRevoked:
		return ReasonRevoked
	case e.Alert == pki.AlertUnknownCA:
		return ReasonUnknownCA
	}
	return ReasonBadCertificate
}

// reasonFromText sorts the handshake errors that crypto/tls gives no type,
// by their message.
func reasonFromText(msg string) string {
	has := func(subs ...string) bool {
		for _, s := range subs {
			if strings.Contains(msg, s) {
				return true
			}
		}
		return false
	}
	switch {
	case has("i/o timeout", "deadline exceeded"):
		return ReasonTimeout
	case has("remote error:"):
		return ReasonClientAlert
	case has("didn't provide a certificate", "client certificate required"):
		return ReasonNoCertificate
	case has("no certificates configured"):
		// The server name matches no domain.
		return ReasonUnrecognizedName
	case has("unknown authority", "unable to get local issuer certificate"):
		return ReasonUnknownCA
	case has("expired", "not yet valid"):
		return ReasonExpired
	case has("revoked"):
		return ReasonRevoked
	case has("certificate", "x509:"):
		return ReasonBadCertificate
	case has("HTTP request to an HTTPS server", "does not look like a TLS handshake"):
		return ReasonNotTLS
	case has("EOF", "connection reset", "broken pipe"):
		return ReasonClientClosed
	case has("protocol version", "no cipher suite", "no application protocol", "unsupported", "no mutual", "no supported"):
		return ReasonProtocol
	}
	return ReasonOther
}

// errorLog receives the admin server's log lines and logs them as
// warnings.
type errorLog struct {
	log *slog.Logger
}

func (e *errorLog) Write(p []byte) (int, error) {
	line := string(bytes.TrimRight(p, "\n"))
	e.log.Warn(strings.TrimPrefix(line, "http: "))
	return len(p), nil
}
