package edge_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"reflect"
	"slices"
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

// pkiSet is a test PKI: an edge certificate, a partner CA with CRL, and
// client certificates for every verification outcome.
type pkiSet struct {
	edgeRoot, partnerCA, rogue *pkitest.CA
	server                     *pkitest.Certificate
	clients                    map[string]*pkitest.Certificate
	crl                        []byte
}

func newPKI(t testing.TB) *pkiSet {
	t.Helper()
	now := time.Now()
	p := &pkiSet{edgeRoot: pkitest.NewCA("edge root"), partnerCA: pkitest.NewCA("partner ca"), rogue: pkitest.NewCA("rogue ca")}
	p.server = p.edgeRoot.IssueServer([]string{"api.bank.test", "portal.bank.test", "open.bank.test", "*.partners.bank.test", "other.bank.test"})
	inter := p.partnerCA.Intermediate("partner intermediate")
	deep := inter.Intermediate("deeper").Intermediate("deepest")
	p.clients = map[string]*pkitest.Certificate{
		"valid":      p.partnerCA.IssueClient("partner-app"),
		"via-inter":  inter.IssueClient("inter-app"),
		"untrusted":  p.rogue.IssueClient("rogue-app"),
		"expired":    p.partnerCA.IssueClient("expired-app", pkitest.WithValidity(now.Add(-48*time.Hour), now.Add(-24*time.Hour))),
		"not-yet":    p.partnerCA.IssueClient("future-app", pkitest.WithValidity(now.Add(24*time.Hour), now.Add(48*time.Hour))),
		"serverauth": p.partnerCA.IssueClient("server-app", pkitest.WithExtKeyUsage(x509.ExtKeyUsageServerAuth)),
		"revoked":    p.partnerCA.IssueClient("revoked-app", pkitest.WithSerial(big.NewInt(666))),
		"too-deep":   deep.IssueClient("deep-app"),
		// A CA certificate presented as the client's own.
		"ca-leaf": &inter.Certificate,
	}
	p.crl = pkitest.EncodeCRL(p.partnerCA.CRL(now.Add(-time.Hour), now.Add(24*time.Hour), big.NewInt(666)))
	return p
}

// origin records what reaches it.
type origin struct {
	*httptest.Server
	mu   sync.Mutex
	last http.Header
	hits int
	host string
	path string
}

func newOrigin(t testing.TB) *origin {
	o := &origin{}
	o.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.mu.Lock()
		o.last, o.hits, o.host, o.path = r.Header.Clone(), o.hits+1, r.Host, r.URL.RequestURI()
		o.mu.Unlock()
		w.Header().Set("Server", "origin")
		fmt.Fprintf(w, "origin ok %s\n", r.URL.Path)
	}))
	t.Cleanup(o.Close)
	return o
}

func (o *origin) snapshot() (http.Header, int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.last, o.hits
}

func ptr[T any](v T) *T { return &v }

// snapshotFor builds a state snapshot: api (enforce), portal (permissive with
// a firewall), open (no mTLS), and *.partners (enforce).
func snapshotFor(p *pkiSet, originURL string) *state.Snapshot {
	caPEM := string(p.partnerCA.CertPEM())
	arg := func(s string) *string { return &s }
	return &state.Snapshot{Serial: 3, Lineage: "test", Resources: []state.Resource{
		{Kind: manifest.KindCertificate, Name: "edge", Spec: &manifest.CertificateSpec{Certificate: string(p.server.ChainPEM()), PrivateKeyEnv: "EDGE_KEY"}},
		{Kind: manifest.KindTrustedCA, Name: "partners", Spec: &manifest.TrustedCASpec{Certificate: caPEM, CRL: string(p.crl), VerifyDepth: ptr(2)}},
		{Kind: manifest.KindApplication, Name: "api", Spec: &manifest.ApplicationSpec{
			Origin: manifest.Origin{URL: originURL, ConnectTimeout: "1s", ResponseTimeout: "2s"},
			Rules: []manifest.AppRule{
				{Name: "identity", Behaviors: []manifest.AppBehavior{
					{AddRequestHeader: "Client-Cert-Subject: ${ssl_client_s_dn_parsed}"},
					{AddRequestHeader: "Client-Verify: ${ssl_client_verify}"},
					{AddRequestHeader: "Client-Cert: ${ssl_client_escaped_cert}"},
				}},
				{Name: "tag", Phase: "response", Behaviors: []manifest.AppBehavior{{AddResponseHeader: "Edge: edgectl"}, {FilterResponseHeader: "Server"}}},
			},
		}},
		{Kind: manifest.KindFirewall, Name: "portal", Spec: &manifest.FirewallSpec{Rules: []manifest.FirewallRule{{
			Name:      "deny unverified",
			Criteria:  [][]manifest.Criterion{{{Variable: "client_certificate_validation", Operator: "is_not_equal", Argument: arg("true")}}},
			Behaviors: []manifest.FirewallBehavior{{Deny: true}},
		}}}},
		{Kind: manifest.KindDomain, Name: "api", Spec: &manifest.DomainSpec{Hostnames: []string{"api.bank.test"}, Certificate: "edge", Application: "api",
			MTLS: &manifest.MTLS{Enabled: true, Verification: "enforce", TrustedCA: "partners"}}},
		{Kind: manifest.KindDomain, Name: "partners", Spec: &manifest.DomainSpec{Hostnames: []string{"*.partners.bank.test"}, Certificate: "edge", Application: "api",
			MTLS: &manifest.MTLS{Enabled: true, Verification: "enforce", TrustedCA: "partners"}}},
		{Kind: manifest.KindDomain, Name: "portal", Spec: &manifest.DomainSpec{Hostnames: []string{"portal.bank.test"}, Certificate: "edge", Application: "api", Firewall: "portal",
			MTLS: &manifest.MTLS{Enabled: true, Verification: "permissive", TrustedCA: "partners"}}},
		{Kind: manifest.KindDomain, Name: "open", Spec: &manifest.DomainSpec{Hostnames: []string{"open.bank.test"}, Certificate: "edge", Application: "api"}},
	}}
}

// edgeServer is an edge served by pkg/server (see serveStore), the test
// PKI and the origin of its snapshot.
type edgeServer struct {
	addr string
	srv  *server.Server
	// stop stops the server, letting the requests in flight finish; the
	// test's cleanup calls it too.
	stop func()
	p    *pkiSet
	o    *origin
}

func startEdge(t *testing.T) *edgeServer { return startEdgeB(t) }

func startEdgeB(t testing.TB) *edgeServer {
	t.Helper()
	p := newPKI(t)
	o := newOrigin(t)
	e := serveSnapshot(t, p, snapshotFor(p, o.URL))
	e.o = o
	return e
}

// result is what a client observed: a handshake rejection (with its
// alert) or an HTTP status.
type result struct {
	rejected bool
	alert    string
	status   int
	body     string
	header   http.Header
}

// do performs one request on a fresh connection, detecting a TLS 1.3
// rejection that arrives only on the first read.
func (e *edgeServer) do(t *testing.T, sni, client string, version uint16, host string, hdr http.Header) result {
	t.Helper()
	roots := x509.NewCertPool()
	roots.AddCert(e.p.edgeRoot.Cert)
	cfg := &tls.Config{ServerName: sni, RootCAs: roots, MinVersion: version, MaxVersion: version, NextProtos: []string{"http/1.1"}}
	if sni == "" {
		cfg.ServerName, cfg.InsecureSkipVerify = "", true
	}
	if c := e.p.clients[client]; c != nil {
		cert := c.TLSCertificate()
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }
	}
	conn, err := tls.Dial("tcp", e.addr, cfg)
	if err != nil {
		return result{rejected: true, alert: alertName(err)}
	}
	defer conn.Close()
	if host == "" {
		host = sni
	}
	req, _ := http.NewRequest("GET", "https://"+host+"/accounts?x=1", nil)
	req.Host = host
	for k, v := range hdr {
		req.Header[k] = v
	}
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if err := req.Write(conn); err != nil {
		return result{rejected: true, alert: alertName(err)}
	}
	resp, err := http.ReadResponse(bufioReader(conn), req)
	if err != nil {
		return result{rejected: true, alert: alertName(err)}
	}
	body, _ := io.ReadAll(resp.Body)
	return result{status: resp.StatusCode, body: string(body), header: resp.Header}
}

// alertName returns the name of the TLS alert that failed the connection
// ("unknown_certificate_authority"), or "error: " and the error when none
// did. A received alert is a *net.OpError "remote error" wrapping the
// alert's code (an unexported uint8 type of crypto/tls), named here by
// tls.AlertError; one the client sent is a tls.AlertError.
func alertName(err error) string {
	name := func(a tls.AlertError) string {
		return strings.ReplaceAll(strings.TrimPrefix(a.Error(), "tls: "), " ", "_")
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "remote error" {
		if v := reflect.ValueOf(oe.Err); v.Kind() == reflect.Uint8 {
			return name(tls.AlertError(v.Uint()))
		}
	}
	var ae tls.AlertError
	if errors.As(err, &ae) {
		return name(ae)
	}
	return "error: " + err.Error()
}

func TestEnforceHandshakes(t *testing.T) {
	t.Parallel()
	e := startEdge(t)
	tests := map[string]struct {
		client string
		alert  map[uint16]string // by TLS version; empty means accepted
	}{
		"valid":            {client: "valid"},
		"via intermediate": {client: "via-inter"},
		"no certificate":   {client: "", alert: map[uint16]string{tls.VersionTLS13: "certificate_required", tls.VersionTLS12: "handshake_failure"}},
		"untrusted":        {client: "untrusted", alert: map[uint16]string{tls.VersionTLS13: "unknown_certificate_authority", tls.VersionTLS12: "unknown_certificate_authority"}},
		"expired":          {client: "expired", alert: map[uint16]string{tls.VersionTLS13: "expired_certificate", tls.VersionTLS12: "expired_certificate"}},
		"not yet valid":    {client: "not-yet", alert: map[uint16]string{tls.VersionTLS13: "expired_certificate", tls.VersionTLS12: "expired_certificate"}},
		"serverAuth only":  {client: "serverauth", alert: map[uint16]string{tls.VersionTLS13: "bad_certificate", tls.VersionTLS12: "bad_certificate"}},
		"revoked by CRL":   {client: "revoked", alert: map[uint16]string{tls.VersionTLS13: "bad_certificate", tls.VersionTLS12: "bad_certificate"}},
		"chain too deep":   {client: "too-deep", alert: map[uint16]string{tls.VersionTLS13: "bad_certificate", tls.VersionTLS12: "bad_certificate"}},
		"CA as the leaf":   {client: "ca-leaf", alert: map[uint16]string{tls.VersionTLS13: "bad_certificate", tls.VersionTLS12: "bad_certificate"}},
	}
	for name, tc := range tests {
		for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
			t.Run(fmt.Sprintf("%s/%s", name, tls.VersionName(v)), func(t *testing.T) {
				_, before := e.o.snapshot()
				got := e.do(t, "api.bank.test", tc.client, v, "", nil)
				_, after := e.o.snapshot()
				if want := tc.alert[v]; want != "" {
					if !got.rejected || got.alert != want {
						t.Fatalf("want handshake rejected with %s, got %+v", want, got)
					}
					if after != before {
						t.Fatal("a rejected client reached the origin")
					}
					return
				}
				if got.rejected || got.status != 200 {
					t.Fatalf("want 200, got %+v", got)
				}
			})
		}
	}
}

func TestPermissiveRecordsVerification(t *testing.T) {
	t.Parallel()
	e := startEdge(t)
	tests := map[string]struct {
		client, verify string
		status         int
	}{
		"valid":           {"valid", "SUCCESS", 200},
		"no certificate":  {"", "", 403},
		"untrusted":       {"untrusted", "", 403},
		"expired":         {"expired", "", 403},
		"revoked":         {"revoked", "", 403},
		"serverAuth only": {"serverauth", "", 403},
		"CA as the leaf":  {"ca-leaf", "", 403},
		"not yet valid":   {"not-yet", "", 403},
		"chain too deep":  {"too-deep", "", 403},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := e.do(t, "portal.bank.test", tc.client, tls.VersionTLS13, "", nil)
			if got.rejected || got.status != tc.status {
				t.Fatalf("want %d, got %+v", tc.status, got)
			}
			if tc.status == 200 {
				h, _ := e.o.snapshot()
				if h.Get("Client-Verify") != tc.verify {
					t.Errorf("Client-Verify = %q, want %q", h.Get("Client-Verify"), tc.verify)
				}
			}
		})
	}
}

func TestIdentityHeadersReachOrigin(t *testing.T) {
	t.Parallel()
	e := startEdge(t)
	spoof := http.Header{
		"Client-Cert-Subject": {"admin"},
		"Client_cert_subject": {"admin"},
		"CLIENT-VERIFY":       {"SUCCESS"},
		"Connection":          {"Client-Cert"},
	}
	got := e.do(t, "api.bank.test", "valid", tls.VersionTLS13, "", spoof)
	if got.status != 200 {
		t.Fatalf("status %d: %s", got.status, got.body)
	}
	h, _ := e.o.snapshot()
	if v := h.Values("Client-Cert-Subject"); len(v) != 1 || v[0] != "partner-app" {
		t.Errorf("Client-Cert-Subject = %q, want exactly [partner-app]", v)
	}
	if v := h.Values("Client-Verify"); len(v) != 1 || v[0] != "SUCCESS" {
		t.Errorf("Client-Verify = %q", v)
	}
	if _, ok := h["Client_cert_subject"]; ok {
		t.Error("underscore spelling of an identity header reached the origin")
	}
	if !strings.HasPrefix(h.Get("Client-Cert"), "-----BEGIN%20CERTIFICATE-----%0A") {
		t.Errorf("Client-Cert = %.40q", h.Get("Client-Cert"))
	}
	if h.Get("X-Forwarded-For") == "" || h.Get("X-Forwarded-Proto") != "https" {
		t.Errorf("forwarded headers: %q %q", h.Get("X-Forwarded-For"), h.Get("X-Forwarded-Proto"))
	}
	if got.header.Get("Edge") != "edgectl" || got.header.Get("Server") != "" {
		t.Errorf("response phase: Edge=%q Server=%q", got.header.Get("Edge"), got.header.Get("Server"))
	}
	// Without mTLS there is no identity, and a forged one is removed.
	got = e.do(t, "open.bank.test", "", tls.VersionTLS13, "", spoof)
	h, _ = e.o.snapshot()
	if got.status != 200 || h.Get("Client-Cert-Subject") != "" || h.Get("Client-Verify") != "NONE" {
		t.Errorf("open domain: status %d, subject %q, verify %q", got.status, h.Get("Client-Cert-Subject"), h.Get("Client-Verify"))
	}
}

// TestIdentityAfterIdle: a connection that went idle (250 ms without a
// request: it forgets its certificate's PEM forms, edge.ConnIdle) forwards
// the same certificate on its next request, over HTTP/1.1 and HTTP/2. The
// request after the idle period is on the same connection, so the form is
// built again rather than on a new connection.
func TestIdentityAfterIdle(t *testing.T) {
	t.Parallel()
	e := startEdge(t)
	h1 := e.h1Client()
	h2 := e.h2Conn(t)
	for _, proto := range []string{"HTTP/1.1", "HTTP/2.0"} {
		var certs []string
		for i := range 2 {
			if i > 0 {
				time.Sleep(400 * time.Millisecond)
			}
			req, _ := http.NewRequest("GET", "https://api.bank.test/accounts", nil)
			reused := true // one http2.ClientConn: always the same connection
			var resp *http.Response
			var err error
			if proto == "HTTP/2.0" {
				resp, err = h2.RoundTrip(req)
			} else {
				trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) { reused = info.Reused }}
				resp, err = h1.Do(req.WithContext(httptrace.WithClientTrace(req.Context(), trace)))
			}
			if err != nil {
				t.Fatalf("%s request %d: %v", proto, i, err)
			}
			if i > 0 && !reused {
				t.Fatalf("%s request after idle: a new connection, want the idle one", proto)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			h, _ := e.o.snapshot()
			if resp.StatusCode != 200 || resp.Proto != proto {
				t.Fatalf("request %d: %s %d", i, resp.Proto, resp.StatusCode)
			}
			certs = append(certs, h.Get("Client-Cert"))
		}
		if !strings.HasPrefix(certs[0], "-----BEGIN%20CERTIFICATE-----%0A") || certs[1] != certs[0] {
			t.Errorf("%s: Client-Cert %.40q, then after idle %.40q", proto, certs[0], certs[1])
		}
	}
}

func TestHostMustMatchSNI(t *testing.T) {
	t.Parallel()
	e := startEdge(t)
	tests := map[string]struct {
		sni, host string
		want      int
	}{
		"same host":               {"api.bank.test", "api.bank.test", 200},
		"host with port":          {"api.bank.test", "api.bank.test:8443", 200},
		"host upper case":         {"api.bank.test", "API.Bank.Test", 200},
		"host trailing dot":       {"api.bank.test", "api.bank.test.", 200},
		"other domain":            {"api.bank.test", "portal.bank.test", 421},
		"open domain via api sni": {"api.bank.test", "open.bank.test", 421},
		"enforce via open sni":    {"open.bank.test", "api.bank.test", 421},
		"unknown host":            {"api.bank.test", "evil.example", 421},
		"wildcard same domain":    {"a.partners.bank.test", "b.partners.bank.test", 200},
		"wildcard two labels":     {"a.partners.bank.test", "x.a.partners.bank.test", 421},
		"sni upper case":          {"API.BANK.TEST", "api.bank.test", 200},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			client := "valid"
			if strings.HasPrefix(tc.sni, "open") {
				client = ""
			}
			got := e.do(t, tc.sni, client, tls.VersionTLS13, tc.host, nil)
			if got.rejected || got.status != tc.want {
				t.Fatalf("want %d, got %+v", tc.want, got)
			}
		})
	}
}

func TestUnknownSNIRefused(t *testing.T) {
	t.Parallel()
	e := startEdge(t)
	for _, sni := range []string{"evil.example", "", "x.y.partners.bank.test"} {
		got := e.do(t, sni, "valid", tls.VersionTLS13, "api.bank.test", nil)
		if !got.rejected || got.alert != "unrecognized_name" {
			t.Errorf("SNI %q: want unrecognized_name, got %+v", sni, got)
		}
	}
}

func TestCompileFailsClosed(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	snap := snapshotFor(p, "http://127.0.0.1:1")
	snap.Resources[1].Spec = &manifest.TrustedCASpec{Certificate: ""}
	_, err := edge.Compile(snap, edge.Options{LookupEnv: func(string) (string, bool) { return string(p.server.KeyPEM()), true }})
	var ce *edge.CompileError
	if !errors.As(err, &ce) {
		t.Fatalf("want a compile error for an empty trust store, got %v", err)
	}
	if !strings.Contains(err.Error(), "TrustedCA/partners") || !strings.Contains(err.Error(), "no trust store") {
		t.Errorf("error does not name the broken trust store: %v", err)
	}
	if !slices.ContainsFunc(ce.Problems, func(p edge.Problem) bool { return p.Kind == manifest.KindTrustedCA && p.Name == "partners" }) {
		t.Errorf("no problem of TrustedCA/partners in %+v", ce.Problems)
	}
}
