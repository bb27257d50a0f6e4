package server

import (
	"bytes"
	"crypto/tls"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"time"
)

// handshakeListener accepts TCP connections and wraps them in TLS with a
// deadline of its own for the handshake. http.Server would otherwise use
// its header-read timeout as the handshake deadline.
type handshakeListener struct {
	net.Listener
	config  *tls.Config
	timeout time.Duration
}

func (l *handshakeListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetKeepAlive(true)
		tc.SetKeepAlivePeriod(3 * time.Minute)
	}
	if l.timeout <= 0 {
		return tls.Server(c, l.config), nil
	}
	hc := &handshakeConn{Conn: c, deadline: time.Now().Add(l.timeout)}
	hc.tls = tls.Server(hc, l.config)
	c.SetDeadline(hc.deadline)
	return hc.tls, nil
}

// handshakeConn keeps the handshake deadline in force until the handshake
// is complete: deadlines that http.Server sets before the handshake are
// replaced by it; afterwards deadlines pass through.
type handshakeConn struct {
	net.Conn
	tls      *tls.Conn
	deadline time.Time
	done     atomic.Bool
}

func (c *handshakeConn) handshaking() bool {
	if c.done.Load() {
		return false
	}
	if c.tls.ConnectionState().HandshakeComplete {
		c.done.Store(true)
		return false
	}
	return true
}

func (c *handshakeConn) SetDeadline(t time.Time) error {
	if c.handshaking() {
		t = c.deadline
	}
	return c.Conn.SetDeadline(t)
}

func (c *handshakeConn) SetReadDeadline(t time.Time) error {
	if c.handshaking() {
		t = c.deadline
	}
	return c.Conn.SetReadDeadline(t)
}

func (c *handshakeConn) SetWriteDeadline(t time.Time) error {
	if c.handshaking() {
		t = c.deadline
	}
	return c.Conn.SetWriteDeadline(t)
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

// HandshakeReason sorts a handshake error, as http.Server logs it, into
// one of the Reason constants.
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

// errorLog receives http.Server's log lines: failed handshakes are counted
// by reason (and logged at debug level, since scanners cause plenty);
// anything else is a warning.
type errorLog struct {
	log     *slog.Logger
	counted func(reason string)
}

const handshakePrefix = "http: TLS handshake error from "

func (e *errorLog) Write(p []byte) (int, error) {
	line := string(bytes.TrimRight(p, "\n"))
	if rest, ok := strings.CutPrefix(line, handshakePrefix); ok {
		remote, msg, _ := strings.Cut(rest, ": ")
		reason := HandshakeReason(msg)
		e.counted(reason)
		e.log.Debug("TLS handshake refused", "remote", remote, "reason", reason, "error", msg)
		return len(p), nil
	}
	e.log.Warn(strings.TrimPrefix(line, "http: "))
	return len(p), nil
}
