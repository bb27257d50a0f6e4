package server

import (
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgectl/edgectl/pkg/edge"
)

func TestHandshakeReason(t *testing.T) {
	tests := map[string]string{
		"tls: client didn't provide a certificate":                                                               ReasonNoCertificate,
		"tls: failed to verify certificate: x509: certificate signed by unknown authority":                       ReasonUnknownCA,
		"tls: failed to verify certificate: x509: certificate has expired or is not yet valid: current time ...": ReasonExpired,
		"client certificate verification failed: certificate revoked: certificate CN=x (serial 02) is revoked":   ReasonRevoked,
		"tls: failed to verify certificate: x509: certificate specifies an incompatible key usage":               ReasonBadCertificate,
		"client certificate verification failed: certificate chain too long: chain of 5 certificates":            ReasonBadCertificate,
		"tls: no certificates configured":                                                                        ReasonUnrecognizedName,
		"read tcp 127.0.0.1:8443->127.0.0.1:5000: i/o timeout":                                                   ReasonTimeout,
		"remote error: tls: bad certificate":                                                                     ReasonClientAlert,
		"EOF":                                                                                                    ReasonClientClosed,
		"read tcp 127.0.0.1:8443->127.0.0.1:5000: read: connection reset by peer":                                ReasonClientClosed,
		"client sent an HTTP request to an HTTPS server":                                                         ReasonNotTLS,
		"tls: client offered only unsupported versions: [301]":                                                   ReasonProtocol,
		"tls: no cipher suite supported by both client and server":                                               ReasonProtocol,
		"something new": ReasonOther,
	}
	for msg, want := range tests {
		if got := HandshakeReason(msg); got != want {
			t.Errorf("HandshakeReason(%q) = %s, want %s", msg, got, want)
		}
	}
}

// blockedWriter blocks every Write until released.
type blockedWriter struct{ release chan struct{} }

func (w *blockedWriter) Write(p []byte) (int, error) {
	<-w.release
	return len(p), nil
}

func TestAccessLogDropsInsteadOfBlocking(t *testing.T) {
	w := &blockedWriter{release: make(chan struct{})}
	var dropped atomic.Int64
	l := newAccessLog(w, func() { dropped.Add(1) })
	rec := &edge.Record{Domain: "api", Host: "api.test", Method: "GET", Path: "/", Status: 200}
	began := time.Now()
	for range accessLogQueue + 2000 {
		l.log(time.Now(), rec)
	}
	if took := time.Since(began); took > 2*time.Second {
		t.Errorf("logging blocked for %s", took)
	}
	if dropped.Load() == 0 {
		t.Error("nothing dropped while the writer was blocked")
	}
	close(w.release)
	l.Close()
}

func TestAccessLineEscapes(t *testing.T) {
	e := &accessEntry{at: time.Date(2026, 1, 2, 3, 4, 5, 6e6, time.UTC), rec: edge.Record{
		Domain: "api", Host: "a\"b", Path: "/\n<x>é", Status: 200, Duration: 1500 * time.Microsecond,
	}}
	got := string(appendAccessLine(nil, e))
	want := `{"time":"2026-01-02T03:04:05.006Z","domain":"api","host":"a\"b","method":"","path":"/\n\u003cx\u003eé","status":200,"bytes":0,"duration_ms":1.5,"verify":"","client_fingerprint":"","firewall_rule":"","firewall_action":"","remote":""}` + "\n"
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestErrorLogCountsHandshakes(t *testing.T) {
	var reasons []string
	var logged strings.Builder
	e := &errorLog{log: newTestLogger(&logged), counted: func(r string) { reasons = append(reasons, r) }}
	io.WriteString(e, "http: TLS handshake error from 127.0.0.1:5555: tls: client didn't provide a certificate\n")
	io.WriteString(e, "http: superfluous response.WriteHeader call\n")
	if len(reasons) != 1 || reasons[0] != ReasonNoCertificate {
		t.Errorf("reasons = %q", reasons)
	}
	if !strings.Contains(logged.String(), "remote=127.0.0.1:5555") || !strings.Contains(logged.String(), "superfluous") {
		t.Errorf("log: %s", logged.String())
	}
}

func newTestLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
