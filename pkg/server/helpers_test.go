package server_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgectl/edgectl/pkg/edge"
	"github.com/edgectl/edgectl/pkg/manifest"
	"github.com/edgectl/edgectl/pkg/pki/pkitest"
	"github.com/edgectl/edgectl/pkg/server"
	"github.com/edgectl/edgectl/pkg/state"
)

// fixture is a test PKI, a recording origin and a state file holding a
// snapshot with three domains: api.test (enforce), portal.test
// (permissive, with a firewall denying unverified clients) and open.test
// (no mTLS).
type fixture struct {
	root, partners, rogue *pkitest.CA
	server                *pkitest.Certificate
	valid, untrusted      *pkitest.Certificate
	origin                *httptest.Server
	statePath             string
	lineage               string

	mu      sync.Mutex
	release chan struct{} // closes to let /slow requests answer
	arrived chan struct{} // receives when a /slow request reached the origin
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{root: pkitest.NewCA("edge root"), partners: pkitest.NewCA("partner ca"), rogue: pkitest.NewCA("rogue ca"),
		release: make(chan struct{}), arrived: make(chan struct{}, 16), lineage: state.NewLineage()}
	f.server = f.root.IssueServer([]string{"api.test", "portal.test", "open.test"})
	f.valid = f.partners.IssueClient("partner-app")
	f.untrusted = f.rogue.IssueClient("rogue-app")
	f.origin = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			f.arrived <- struct{}{}
			<-f.release
		}
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintf(w, "origin %s subject=%s\n", r.URL.Path, r.Header.Get("Client-Cert-Subject"))
	}))
	t.Cleanup(func() {
		f.mu.Lock()
		select {
		case <-f.release:
		default:
			close(f.release)
		}
		f.mu.Unlock()
		f.origin.Close()
	})
	f.statePath = filepath.Join(t.TempDir(), "state.json")
	f.write(t, f.snapshot(1, "v1"))
	return f
}

func ptrTo[T any](v T) *T { return &v }

// snapshot is the fixture's state at serial; tag is sent back in the
// response header Version, so a test sees which runtime answered.
func (f *fixture) snapshot(serial int64, tag string) *state.Snapshot {
	return &state.Snapshot{FormatVersion: state.FormatVersion, Lineage: f.lineage, Serial: serial,
		AppliedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Resources: []state.Resource{
			{Kind: manifest.KindCertificate, Name: "edge", Spec: &manifest.CertificateSpec{Certificate: string(f.server.ChainPEM()), PrivateKeyEnv: "EDGE_KEY"}},
			{Kind: manifest.KindTrustedCA, Name: "partners", Spec: &manifest.TrustedCASpec{Certificate: string(f.partners.CertPEM())}},
			{Kind: manifest.KindApplication, Name: "app", Spec: &manifest.ApplicationSpec{
				Origin: manifest.Origin{URL: f.origin.URL, ConnectTimeout: "1s", ResponseTimeout: "5s"},
				Rules: []manifest.AppRule{
					{Name: "identity", Behaviors: []manifest.AppBehavior{
						{AddRequestHeader: "Client-Cert-Subject: ${ssl_client_s_dn_parsed}"},
						{AddRequestHeader: "Client-Cert: ${ssl_client_escaped_cert}"},
					}},
					{Name: "version", Phase: "response", Behaviors: []manifest.AppBehavior{{AddResponseHeader: "Version: " + tag}}},
				},
			}},
			{Kind: manifest.KindFirewall, Name: "portal", Spec: &manifest.FirewallSpec{Rules: []manifest.FirewallRule{{
				Name:      "deny unverified",
				Criteria:  [][]manifest.Criterion{{{Variable: "client_certificate_validation", Operator: "is_not_equal", Argument: ptrTo("true")}}},
				Behaviors: []manifest.FirewallBehavior{{Deny: true}},
			}}}},
			{Kind: manifest.KindDomain, Name: "api", Spec: &manifest.DomainSpec{Hostnames: []string{"api.test"}, Certificate: "edge", Application: "app",
				MTLS: &manifest.MTLS{Enabled: true, Verification: "enforce", TrustedCA: "partners"}}},
			{Kind: manifest.KindDomain, Name: "open", Spec: &manifest.DomainSpec{Hostnames: []string{"open.test"}, Certificate: "edge", Application: "app"}},
			{Kind: manifest.KindDomain, Name: "portal", Spec: &manifest.DomainSpec{Hostnames: []string{"portal.test"}, Certificate: "edge", Application: "app", Firewall: "portal",
				MTLS: &manifest.MTLS{Enabled: true, Verification: "permissive", TrustedCA: "partners"}}},
		}}
}

// write replaces the state file atomically, as an apply does.
func (f *fixture) write(t *testing.T, snap *state.Snapshot) {
	t.Helper()
	data, err := json.MarshalIndent(snap, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	f.writeRaw(t, data)
}

func (f *fixture) writeRaw(t *testing.T, data []byte) {
	t.Helper()
	tmp := f.statePath + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, f.statePath); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) config() server.Config {
	return server.Config{
		Store:  state.NewFileStore(f.statePath),
		Listen: "127.0.0.1:0",
		Admin:  "127.0.0.1:0",
		Compile: edge.Options{LookupEnv: func(k string) (string, bool) {
			return string(f.server.KeyPEM()), k == "EDGE_KEY"
		}},
	}
}

// running is a started server.
type running struct {
	srv    *server.Server
	cancel context.CancelFunc
	done   chan error
	log    *syncBuffer
	access *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func start(t *testing.T, f *fixture, mod func(*server.Config)) *running {
	t.Helper()
	cfg := f.config()
	r := &running{done: make(chan error, 1), log: &syncBuffer{}, access: &syncBuffer{}}
	cfg.Logger = slog.New(slog.NewTextHandler(r.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg.AccessLog = r.access
	if mod != nil {
		mod(&cfg)
	}
	srv, err := server.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.srv, r.cancel = srv, cancel
	go func() { r.done <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		r.stop(t)
		if t.Failed() {
			t.Logf("server log:\n%s", r.log.String())
		}
	})
	return r
}

// stop shuts the server down and waits for Serve to return.
func (r *running) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	select {
	case err, ok := <-r.done:
		if ok && err != nil {
			t.Errorf("Serve: %v", err)
		}
		if ok {
			close(r.done)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
}

// client returns an HTTPS client for server name sni, presenting cert
// (nil for none); h2 selects HTTP/2.
func (r *running) client(f *fixture, sni string, cert *pkitest.Certificate, h2 bool) *http.Client {
	roots := x509.NewCertPool()
	roots.AddCert(f.root.Cert)
	cfg := &tls.Config{ServerName: sni, RootCAs: roots}
	if cert != nil {
		// Always present it, even when the edge asks for other CAs.
		c := cert.TLSCertificate()
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &c, nil }
	}
	addr := r.srv.Addr().String()
	tr := &http.Transport{
		TLSClientConfig:   cfg,
		ForceAttemptHTTP2: h2,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
	}
	if !h2 {
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// get fetches https://host/path with the client; it returns the status (0
// with the error when the request failed), the Version header and the body.
func get(c *http.Client, host, path string) (int, string, string, error) {
	resp, err := c.Get("https://" + host + path)
	if err != nil {
		return 0, "", "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Version"), string(body), nil
}

// admin fetches an admin endpoint.
func (r *running) admin(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + r.srv.AdminAddr().String() + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// eventually polls cond every 20ms for up to 5s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// metric returns the line of /metrics that starts with name{labels} (or
// name alone), or "".
func (r *running) metric(t *testing.T, series string) string {
	t.Helper()
	_, body := r.admin(t, "/metrics")
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, series+" ") {
			return strings.TrimPrefix(line, series+" ")
		}
	}
	return ""
}
