package server

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/edgectl/edgectl/pkg/edge"
	"github.com/edgectl/edgectl/pkg/pki"
)

// TestHandshakeReasonFromText sorts the messages of the errors crypto/tls
// gives no type (and, as a last resort, any other).
func TestHandshakeReasonFromText(t *testing.T) {
	t.Parallel()
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
		if got := reasonFromText(msg); got != want {
			t.Errorf("reasonFromText(%q) = %s, want %s", msg, got, want)
		}
		if got := handshakeReason(errors.New(msg), true); got != want {
			t.Errorf("handshakeReason(errors.New(%q)) = %s, want %s", msg, got, want)
		}
	}
}

// TestHandshakeReason sorts typed handshake errors by their type, whatever
// their text says.
func TestHandshakeReason(t *testing.T) {
	t.Parallel()
	wrap := func(err error) error { return fmt.Errorf("tls: handshake: %w", err) }
	tests := map[string]struct {
		err      error
		knownSNI bool
		want     string
	}{
		"deadline":           {err: &net.OpError{Op: "read", Err: os.ErrDeadlineExceeded}, knownSNI: true, want: ReasonTimeout},
		"deadline, no SNI":   {err: &net.OpError{Op: "read", Err: os.ErrDeadlineExceeded}, want: ReasonTimeout},
		"plain HTTP":         {err: tls.RecordHeaderError{Msg: "anything"}, want: ReasonNotTLS},
		"client gone":        {err: io.EOF, want: ReasonClientClosed},
		"client reset":       {err: &net.OpError{Op: "read", Err: os.NewSyscallError("read", syscall.ECONNRESET)}, want: ReasonClientClosed},
		"client alert":       {err: &net.OpError{Op: "remote error", Err: errors.New("expired")}, knownSNI: true, want: ReasonClientAlert},
		"missing":            {err: wrap(pki.Missing(tls.VersionTLS13)), knownSNI: true, want: ReasonNoCertificate},
		"edgectl unknown CA": {err: wrap(&pki.VerifyError{Reason: pki.ReasonUnknownCA, Alert: pki.AlertUnknownCA}), knownSNI: true, want: ReasonUnknownCA},
		"edgectl expired":    {err: &pki.VerifyError{Reason: pki.ReasonExpired, Alert: pki.AlertCertificateExpired}, knownSNI: true, want: ReasonExpired},
		"edgectl not yet":    {err: &pki.VerifyError{Reason: pki.ReasonNotYetValid, Alert: pki.AlertBadCertificate}, knownSNI: true, want: ReasonExpired},
		"edgectl revoked":    {err: &pki.VerifyError{Reason: pki.ReasonRevoked, Alert: pki.AlertCertificateRevoked}, knownSNI: true, want: ReasonRevoked},
		"edgectl too long":   {err: &pki.VerifyError{Reason: pki.ReasonChainTooLong, Alert: pki.AlertBadCertificate}, knownSNI: true, want: ReasonBadCertificate},
		"x509 unknown CA":    {err: &tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}, knownSNI: true, want: ReasonUnknownCA},
		"x509 expired":       {err: &tls.CertificateVerificationError{Err: x509.CertificateInvalidError{Reason: x509.Expired}}, knownSNI: true, want: ReasonExpired},
		"x509 usage":         {err: &tls.CertificateVerificationError{Err: x509.CertificateInvalidError{Reason: x509.IncompatibleUsage}}, knownSNI: true, want: ReasonBadCertificate},
		"x509 other":         {err: &tls.CertificateVerificationError{Err: errors.New("x")}, knownSNI: true, want: ReasonBadCertificate},
		"unknown SNI":        {err: errors.New("tls: something"), knownSNI: false, want: ReasonUnrecognizedName},
	}
	for name, tc := range tests {
		if got := handshakeReason(tc.err, tc.knownSNI); got != tc.want {
			t.Errorf("%s: handshakeReason(%v) = %s, want %s", name, tc.err, got, tc.want)
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
	t.Parallel()
	w := &blockedWriter{release: make(chan struct{})}
	var dropped atomic.Int64
	l := newAccessLog(w, func() { dropped.Add(1) })
	rec := &edge.Record{Domain: "api", Host: "api.test", Method: "GET", Path: "/", Status: 200}
	began := time.Now()
	for range accessLogMaxPending/50 + 2000 {
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
	t.Parallel()
	at := time.Date(2026, 1, 2, 3, 4, 5, 6e6, time.UTC)
	rec := &edge.Record{Domain: "api", Host: "a\"b", Path: "/\n<x>é", Status: 200, Duration: 1500 * time.Microsecond}
	got := string(appendAccessLine(nil, &stampCache{}, at, rec))
	want := `{"time":"2026-01-02T03:04:05.006Z","domain":"api","host":"a\"b","method":"","path":"/\n\u003cx\u003eé","status":200,"bytes":0,"duration_ms":1.5,"verify":"","client_fingerprint":"","firewall_rule":"","firewall_action":"","remote":""}` + "\n"
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestErrorLogWarns(t *testing.T) {
	t.Parallel()
	var logged strings.Builder
	e := &errorLog{log: newTestLogger(&logged)}
	io.WriteString(e, "http: superfluous response.WriteHeader call\n")
	if got := logged.String(); !strings.Contains(got, "level=WARN") || !strings.Contains(got, `msg="superfluous response.WriteHeader call"`) {
		t.Errorf("log: %s", got)
	}
}

func newTestLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// lockedBuffer is a bytes.Buffer safe for the log's goroutine and the test.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *lockedBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *lockedBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

func TestAccessLogWritesInOrder(t *testing.T) {
	t.Parallel()
	w := &lockedBuffer{}
	var dropped atomic.Int64
	const flush = 20 * time.Millisecond
	l := newAccessLogFlushing(w, func() { dropped.Add(1) }, flush)
	// A line logged alone is written within the flush interval.
	l.log(time.Now(), &edge.Record{Path: "/first"})
	deadline := time.Now().Add(flush + time.Second)
	for !strings.Contains(w.String(), `"path":"/first"`) {
		if time.Now().After(deadline) {
			t.Fatalf("a line was not written within %v", flush)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Many lines, more than one buffer's worth, arrive whole and in order.
	const n = 2000
	for i := range n {
		l.log(time.Now(), &edge.Record{Path: "/" + strconv.Itoa(i)})
	}
	l.Close()
	l.log(time.Now(), &edge.Record{Path: "/after-close"})
	lines := strings.Split(strings.TrimSuffix(w.String(), "\n"), "\n")
	if len(lines) != n+1 {
		t.Fatalf("%d lines, want %d", len(lines), n+1)
	}
	for i, line := range lines[1:] {
		if !strings.Contains(line, `"path":"/`+strconv.Itoa(i)+`"`) || !strings.HasSuffix(line, "}") {
			t.Fatalf("line %d: %s", i+1, line)
		}
	}
	if dropped.Load() != 1 {
		t.Fatalf("dropped %d, want 1 (the line logged after Close)", dropped.Load())
	}
}

// TestStampCacheMatchesLayout: the cached timestamp is the layout's, for
// instants in one second and across seconds, days and years, before 1970
// included (Unix seconds negative, where truncation rounds the other way).
func TestStampCacheMatchesLayout(t *testing.T) {
	t.Parallel()
	var c stampCache
	base := []time.Time{
		time.Date(2026, 12, 31, 23, 59, 59, 999_999_999, time.UTC),
		time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(1969, 12, 31, 23, 59, 59, 500_000_000, time.UTC),
		time.Date(2026, 3, 4, 5, 6, 7, 8_000_000, time.FixedZone("X", -7*3600)),
	}
	for _, at := range base {
		for _, d := range []time.Duration{0, time.Millisecond, 999 * time.Microsecond, 1234 * time.Millisecond, -time.Nanosecond} {
			at := at.Add(d)
			got := string(c.append(nil, at))
			want := at.UTC().Format("2006-01-02T15:04:05.000Z07:00")
			if got != want {
				t.Errorf("%v: got %s, want %s", at, got, want)
			}
		}
	}
}

// TestAppendMillisMatchesFloat: the integer formatting of milliseconds is
// what strconv.AppendFloat gives for µs/1000.
func TestAppendMillisMatchesFloat(t *testing.T) {
	t.Parallel()
	cases := []time.Duration{0, time.Microsecond, 2 * time.Microsecond, 10 * time.Microsecond, 999 * time.Microsecond, time.Millisecond,
		1500 * time.Microsecond, 1010 * time.Microsecond, 123456789 * time.Microsecond, 90 * time.Minute, -1500 * time.Microsecond, 1999}
	for us := int64(0); us < 20000; us += 7 {
		cases = append(cases, time.Duration(us)*time.Microsecond)
	}
	for _, d := range cases {
		got := string(appendMillis(nil, "k", d))
		want := `,"k":` + strconv.FormatFloat(float64(d.Microseconds())/1000, 'f', -1, 64)
		if got != want {
			t.Errorf("%v: got %s, want %s", d, got, want)
		}
	}
}

// TestAppendJSONString: every byte alone and in company, and strings
// around the verbatim ones, come out as encoding/json quotes them.
func TestAppendJSONString(t *testing.T) {
	t.Parallel()
	check := func(s string) {
		t.Helper()
		want, _ := json.Marshal(s)
		if got := appendJSONString(nil, s); string(got) != string(want) {
			t.Errorf("appendJSONString(%q) = %s, want %s", s, got, want)
		}
	}
	for c := 0; c < 256; c++ {
		check(string([]byte{byte(c)}))
		check("ab" + string([]byte{byte(c)}) + "cd")
	}
	for _, s := range []string{"", "api.example.com", "/v1/accounts?x=1", "é", "\xff\xfe", "a\u2028b", "CN=Ünïcode,O=Bank", "SUCCESS", "deny"} {
		check(s)
	}
}

func BenchmarkAccessLine(b *testing.B) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 6e6, time.UTC)
	rec := &edge.Record{Domain: "api", Host: "api.example.com", Method: "GET", Path: "/v1/accounts/12345/transactions",
		Status: 200, Bytes: 1024, Duration: 1500 * time.Microsecond, Verify: "SUCCESS",
		Fingerprint: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", FirewallRule: "mtls-required",
		FirewallAction: "allow", Upstream: 1200 * time.Microsecond, UpstreamStatus: 200, Remote: "127.0.0.1:54321"}
	var c stampCache
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		buf = appendAccessLine(buf[:0], &c, at, rec)
	}
}

// BenchmarkMetricsRequest is the metrics' share of one proxied request:
// its domain and status counter and its upstream histogram.
func BenchmarkMetricsRequest(b *testing.B) {
	m := newMetrics()
	rec := &edge.Record{Domain: "api", Status: 200, UpstreamStatus: 200, Upstream: 3 * time.Millisecond}
	b.ReportAllocs()
	for b.Loop() {
		m.request(rec)
	}
}
