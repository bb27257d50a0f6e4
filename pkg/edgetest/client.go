package edgetest

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/edgectl/edgectl/pkg/manifest"
)

// Handshake outcomes.
const (
	HandshakeAccepted = "accepted"
	HandshakeRejected = "rejected"
)

// UserAgent is sent with every request that does not set its own.
const UserAgent = "edgectl-test"

// Observation is what a case saw.
type Observation struct {
	// Handshake is accepted or rejected.
	Handshake string `json:"handshake"`
	// Alert is the RFC 8446 name of the alert that ended a rejected handshake,
	// or "" when the edge closed the connection without one.
	Alert string `json:"alert,omitempty"`
	// RejectedOnRead is true when a TLS 1.3 rejection arrived only on the
	// first read, after the client had finished its side of the handshake.
	RejectedOnRead bool `json:"rejectedOnRead,omitempty"`
	// TLSVersion is the negotiated version, "1.2" or "1.3".
	TLSVersion string `json:"tlsVersion,omitempty"`
	// Status is the HTTP status, 0 without a response.
	Status int `json:"status,omitempty"`
	// Header holds the response headers.
	Header http.Header `json:"headers,omitempty"`
	// Body is the response body, truncated to MaxBody bytes.
	Body string `json:"-"`
	// Detail explains an outcome without a status or alert, such as a
	// connection closed without a response.
	Detail string `json:"detail,omitempty"`
	// Recorded is true when a recording origin observed the case.
	Recorded bool `json:"recorded,omitempty"`
	// Origin holds the requests the origin received for the case.
	Origin []OriginRequest `json:"origin,omitempty"`
}

// runCase performs one case on a fresh connection: the client's TLS
// configuration, the handshake, then the request and its response. An
// error means the case could not run (an unreadable certificate, an
// unreachable edge, an edge whose certificate does not verify).
func (r *Runner) runCase(ctx context.Context, run Run, c manifest.TestCase, roots *x509.CertPool, id string) (*Observation, error) {
	if run.Target.Addr == "" {
		return nil, errNoAddr
	}
	timeout := r.CaseTimeout
	if timeout <= 0 {
		timeout = DefaultCaseTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	cfg, err := r.clientConfig(run.Suite, c, roots)
	if err != nil {
		return nil, err
	}
	req, err := buildRequest(c, run.Target.Origin != nil, id)
	if err != nil {
		return nil, err
	}
	dial := r.Dial
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	raw, err := dial(ctx, "tcp", run.Target.Addr)
	if err != nil {
		return nil, fmt.Errorf("cannot connect to the edge at %s: %w", run.Target.Addr, err)
	}
	defer raw.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = raw.SetDeadline(dl)
	}
	conn := tls.Client(raw, cfg)
	obs, err := handshake(ctx, conn, c.ServerName, timeout)
	if err != nil || obs.Handshake == HandshakeRejected {
		return obs, err
	}
	if err := exchange(conn, req, obs, timeout); err != nil {
		return nil, err
	}
	r.recordOrigin(run, id, obs)
	return obs, nil
}

// clientConfig returns the case's TLS configuration: its client
// certificate, versions and the roots that verify the edge. It is fresh
// per case: no session cache, so no resumption between cases.
func (r *Runner) clientConfig(s Suite, c manifest.TestCase, roots *x509.CertPool) (*tls.Config, error) {
	cert, err := r.clientCertificate(s, c)
	if err != nil {
		return nil, err
	}
	minV, maxV := uint16(tls.VersionTLS12), uint16(tls.VersionTLS13)
	if c.TLS != nil {
		if minV, err = tlsVersion(c.TLS.MinVersion, minV); err != nil {
			return nil, err
		}
		if maxV, err = tlsVersion(c.TLS.MaxVersion, maxV); err != nil {
			return nil, err
		}
	}
	return &tls.Config{
		ServerName: c.ServerName,
		RootCAs:    roots,
		MinVersion: minV,
		MaxVersion: maxV,
		NextProtos: []string{"http/1.1"},
		// GetClientCertificate presents the certificate whatever CA names
		// the edge asks for, so that an untrusted certificate is really
		// sent (Certificates would silently send none).
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			if cert == nil {
				return &tls.Certificate{}, nil
			}
			return cert, nil
		},
	}, nil
}

// handshake runs the TLS handshake and observes its outcome: accepted, or
// rejected with the edge's alert (or without one, when the edge just
// closed). An error means the case cannot run.
func handshake(ctx context.Context, conn *tls.Conn, serverName string, timeout time.Duration) (*Observation, error) {
	obs := &Observation{}
	if err := conn.HandshakeContext(ctx); err != nil {
		if alert, ok := remoteAlert(err); ok {
			obs.Handshake, obs.Alert = HandshakeRejected, alert
			return obs, nil
		}
		var verr *tls.CertificateVerificationError
		if errors.As(err, &verr) {
			return nil, fmt.Errorf("the edge's certificate does not verify for %q (check caFile and serverName): %v", serverName, verr.Err)
		}
		if isTimeout(err) {
			return nil, fmt.Errorf("no handshake within %s", timeout)
		}
		if isClosed(err) {
			obs.Handshake, obs.Detail = HandshakeRejected, "the edge closed the connection during the handshake without an alert"
			return obs, nil
		}
		return nil, fmt.Errorf("handshake: %w", err)
	}
	obs.Handshake = HandshakeAccepted
	obs.TLSVersion = versionName(conn.ConnectionState().Version)
	return obs, nil
}

// exchange sends the request and records the response in obs. In TLS 1.3
// the client finishes its handshake before the edge has checked its
// certificate: a rejection arrives as an alert on the first read, so the
// response is read even when the write failed, to collect that alert.
func exchange(conn *tls.Conn, req *http.Request, obs *Observation, timeout time.Duration) error {
	werr := req.Write(conn)
	resp, rerr := http.ReadResponse(bufio.NewReader(conn), req)
	if rerr != nil {
		for _, err := range []error{rerr, werr} {
			if alert, ok := remoteAlert(err); ok {
				obs.Handshake, obs.Alert, obs.RejectedOnRead = HandshakeRejected, alert, true
				return nil
			}
		}
		if isTimeout(rerr) {
			return fmt.Errorf("no response within %s", timeout)
		}
		if isClosed(rerr) {
			obs.Detail = "the edge closed the connection without a response"
			return nil
		}
		return fmt.Errorf("reading the response: %w", rerr)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxBody))
	if err != nil && !isClosed(err) {
		return fmt.Errorf("reading the response body: %w", err)
	}
	obs.Status, obs.Header, obs.Body = resp.StatusCode, resp.Header, string(body)
	return nil
}

func (r *Runner) recordOrigin(run Run, id string, obs *Observation) {
	if run.Target.Origin == nil {
		return
	}
	obs.Recorded = true
	obs.Origin = run.Target.Origin.Received(id)
}

// buildRequest returns the case's HTTP/1.1 request. Header names are sent
// as written (so that client_cert_subject stays spelled with underscores);
// a Host header sets the request's host, which may differ from the SNI.
func buildRequest(c manifest.TestCase, tagged bool, id string) (*http.Request, error) {
	method, path, host := "GET", "/", c.ServerName
	var body string
	header := http.Header{}
	if rq := c.Request; rq != nil {
		if rq.Method != "" {
			method = rq.Method
		}
		if rq.Path != "" {
			path = rq.Path
		}
		for _, k := range sortedKeys(rq.Headers) {
			if strings.EqualFold(k, "Host") {
				host = rq.Headers[k]
				continue
			}
			header[k] = append(header[k], rq.Headers[k])
		}
		body = rq.Body
	}
	u, err := url.ParseRequestURI(path)
	if err != nil {
		return nil, fmt.Errorf("request.path %q: %w", path, err)
	}
	if len(headerValues(header, "User-Agent")) == 0 {
		header.Set("User-Agent", UserAgent)
	}
	if tagged {
		header.Set(CaseHeader, id)
	}
	req := &http.Request{
		Method:     method,
		URL:        u,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     header,
		Host:       host,
		Close:      true,
	}
	if body != "" {
		req.Body = io.NopCloser(strings.NewReader(body))
		req.ContentLength = int64(len(body))
	}
	return req, nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

func isClosed(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, net.ErrClosed)
}
