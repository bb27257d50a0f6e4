package server

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"
)

// acceptLoop accepts TCP connections until the listener is closed and
// serves each on its own goroutine.
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
		go s.serveConn(c)
	}
}

// serveConn runs the TLS handshake under its own deadline, then hands the
// connection to the HTTP/2 server or serves HTTP/1.x on it.
func (s *Server) serveConn(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetKeepAlive(true)
		tc.SetKeepAlivePeriod(3 * time.Minute)
	}
	tc := tls.Server(c, s.tlsConfig)
	if d := s.cfg.HandshakeTimeout; d > 0 {
		c.SetDeadline(time.Now().Add(d))
	}
	if err := tc.Handshake(); err != nil {
		var rh tls.RecordHeaderError
		if errors.As(err, &rh) && rh.Conn != nil && looksLikeHTTP(rh.RecordHeader[:]) {
			// As net/http does: a plain-HTTP client learns why.
			io.WriteString(rh.Conn, "HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n")
		}
		msg := err.Error()
		reason := HandshakeReason(msg)
		s.countHandshake(reason)
		s.log.Debug("TLS handshake refused", "remote", c.RemoteAddr().String(), "reason", reason, "error", msg)
		c.Close()
		return
	}
	c.SetDeadline(time.Time{})
	if tc.ConnectionState().NegotiatedProtocol == "h2" {
		s.h2ln.deliver(tc)
		return
	}
	s.h1.ServeConn(tc)
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

// connListener hands connections whose handshake chose HTTP/2 to
// http.Server.
type connListener struct {
	addr net.Addr
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
}

func newConnListener(addr net.Addr) *connListener {
	return &connListener{addr: addr, ch: make(chan net.Conn), done: make(chan struct{})}
}

func (l *connListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *connListener) deliver(c net.Conn) {
	select {
	case l.ch <- c:
	case <-l.done:
		c.Close()
	}
}

func (l *connListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *connListener) Addr() net.Addr { return l.addr }

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

// HandshakeReason sorts a handshake error (its message) into one of the
// Reason constants.
func HandshakeReason(msg string) string {
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
		// The client refused the edge (for example its certificate).
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

// errorLog receives the HTTP/2 server's log lines (the handshakes, which
// it does not see, are counted in serveConn) and logs them as warnings.
type errorLog struct {
	log *slog.Logger
}

func (e *errorLog) Write(p []byte) (int, error) {
	line := string(bytes.TrimRight(p, "\n"))
	e.log.Warn(strings.TrimPrefix(line, "http: "))
	return len(p), nil
}
