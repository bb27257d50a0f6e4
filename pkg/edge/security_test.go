package edge_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/edgectl/edgectl/pkg/manifest"
	"github.com/edgectl/edgectl/pkg/pki/pkitest"
	"github.com/edgectl/edgectl/pkg/state"
)

// anyNameCache is a client session cache that offers whatever session it
// holds for every server name: the attacker's way to present a ticket from
// one domain to another.
type anyNameCache struct {
	mu sync.Mutex
	cs *tls.ClientSessionState
}

func (c *anyNameCache) Get(string) (*tls.ClientSessionState, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cs, c.cs != nil
}

func (c *anyNameCache) Put(_ string, cs *tls.ClientSessionState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cs != nil {
		c.cs = cs
	}
}

// handshake connects with cache and an optional client certificate, sends
// one request and reports whether the session was resumed and the outcome.
func (e *edgeServer) handshake(t *testing.T, sni, client string, version uint16, cache tls.ClientSessionCache) (resumed bool, res result) {
	t.Helper()
	roots := x509.NewCertPool()
	roots.AddCert(e.p.edgeRoot.Cert)
	cfg := &tls.Config{ServerName: sni, RootCAs: roots, MinVersion: version, MaxVersion: version, ClientSessionCache: cache, NextProtos: []string{"http/1.1"}}
	if c := e.p.clients[client]; c != nil {
		cert := c.TLSCertificate()
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }
	}
	conn, err := tls.Dial("tcp", e.addr, cfg)
	if err != nil {
		return false, result{rejected: true, alert: alertName(err)}
	}
	defer conn.Close()
	req, _ := http.NewRequest("GET", "https://"+sni+"/", nil)
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if err := req.Write(conn); err != nil {
		return conn.ConnectionState().DidResume, result{rejected: true, alert: alertName(err)}
	}
	resp, err := http.ReadResponse(bufioReader(conn), req)
	if err != nil {
		return conn.ConnectionState().DidResume, result{rejected: true, alert: alertName(err)}
	}
	io.Copy(io.Discard, resp.Body)
	// TLS 1.3 tickets arrive after the handshake; reading the response
	// gives the client time to store them.
	return conn.ConnectionState().DidResume, result{status: resp.StatusCode}
}

func TestSessionsNeverResumeAcrossDomains(t *testing.T) {
	t.Parallel()
	e := startEdge(t)
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		for _, from := range []struct{ sni, client string }{
			{"open.bank.test", ""},            // no mTLS
			{"portal.bank.test", "untrusted"}, // Permissive, failed verification
			{"x.partners.bank.test", "valid"}, // another Enforce domain
			{"portal.bank.test", "valid"},     // Permissive, verified
		} {
			t.Run(fmt.Sprintf("%s from %s/%s", tls.VersionName(v), from.sni, from.client), func(t *testing.T) {
				cache := &anyNameCache{}
				if _, r := e.handshake(t, from.sni, from.client, v, cache); r.rejected {
					t.Fatalf("first connection failed: %+v", r)
				}
				if cache.cs == nil {
					t.Fatal("no session ticket was issued; the test proves nothing")
				}
				// Same domain: resumption works (so the cross-domain check below is meaningful).
				if resumed, _ := e.handshake(t, from.sni, from.client, v, cache); !resumed {
					t.Fatal("the session did not resume on its own domain")
				}
				resumed, r := e.handshake(t, "api.bank.test", "", v, cache)
				if resumed {
					t.Fatal("a session resumed into the Enforce domain")
				}
				if !r.rejected {
					t.Fatalf("the Enforce domain admitted a client without a certificate: %+v", r)
				}
			})
		}
	}
}

func TestPermissiveResumptionKeepsVerification(t *testing.T) {
	t.Parallel()
	e := startEdge(t)
	cache := &anyNameCache{}
	e.handshake(t, "portal.bank.test", "untrusted", tls.VersionTLS13, cache)
	resumed, r := e.handshake(t, "portal.bank.test", "", tls.VersionTLS13, cache)
	if !resumed {
		t.Fatal("expected the portal session to resume")
	}
	if r.status != 403 {
		t.Fatalf("a resumed session skipped the recorded verification: status %d", r.status)
	}
}

// TestTrustChangeInvalidatesSessions reloads a snapshot whose CRL revokes
// the client: the old session must not resume.
func TestTrustChangeInvalidatesSessions(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	o := newOrigin(t)
	now := time.Now()
	crls := map[bool]string{
		false: string(pkitest.EncodeCRL(p.partnerCA.CRL(now.Add(-time.Hour), now.Add(time.Hour)))),
		true:  string(pkitest.EncodeCRL(p.partnerCA.CRL(now.Add(-time.Hour), now.Add(time.Hour), p.clients["valid"].Cert.SerialNumber))),
	}
	snapshot := func(revoke bool) *state.Snapshot {
		snap := snapshotFor(p, o.URL)
		snap.Resources[1].Spec.(*manifest.TrustedCASpec).CRL = crls[revoke]
		return snap
	}
	store := newSwapStore(snapshot(false))
	e := serveStore(t, store, keyOptions(p))
	e.p, e.o = p, o

	cache := &anyNameCache{}
	if _, r := e.handshake(t, "api.bank.test", "valid", tls.VersionTLS13, cache); r.status != 200 {
		t.Fatalf("first connection: %+v", r)
	}
	// An unchanged recompile keeps sessions (the server's one process
	// secret, same trust).
	store.set(snapshot(false))
	e.reload(t)
	if resumed, _ := e.handshake(t, "api.bank.test", "valid", tls.VersionTLS13, cache); !resumed {
		t.Fatal("an identical reload dropped sessions")
	}
	store.set(snapshot(true))
	e.reload(t)
	resumed, r := e.handshake(t, "api.bank.test", "valid", tls.VersionTLS13, cache)
	if resumed || !r.rejected {
		t.Fatalf("after the CRL revoked the client: resumed=%v result=%+v", resumed, r)
	}
}

// TestKeepAliveConnectionAfterTrustChange: a connection verified under the
// old trust store must not keep serving once its certificate is revoked.
func TestKeepAliveConnectionAfterTrustChange(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	o := newOrigin(t)
	store := newSwapStore(snapshotFor(p, o.URL))
	e := serveStore(t, store, keyOptions(p))
	addr := e.addr
	now := time.Now()
	revoked := snapshotFor(p, o.URL)
	revoked.Resources[1].Spec.(*manifest.TrustedCASpec).CRL = string(pkitest.EncodeCRL(p.partnerCA.CRL(now.Add(-time.Hour), now.Add(time.Hour), p.clients["valid"].Cert.SerialNumber)))

	roots := x509.NewCertPool()
	roots.AddCert(p.edgeRoot.Cert)
	cert := p.clients["valid"].TLSCertificate()
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{ServerName: "api.bank.test", RootCAs: roots, Certificates: []tls.Certificate{cert}},
		DialContext: func(ctx2 context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx2, network, addr)
		}}}
	get := func() int {
		resp, err := client.Get("https://api.bank.test/")
		if err != nil {
			return -1
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if s := get(); s != 200 {
		t.Fatalf("before: %d", s)
	}
	store.set(revoked)
	e.reload(t)
	if s := get(); s != 421 {
		t.Fatalf("the old keep-alive connection served after the client was revoked: %d", s)
	}
	// A new connection is refused in the handshake.
	client.Transport.(*http.Transport).CloseIdleConnections()
	if s := get(); s != -1 {
		t.Fatalf("a new connection with a revoked certificate got %d", s)
	}
}

// TestHTTP2ReuseAcrossHostnames: an h2 client that coalesces requests for
// another domain onto an existing connection gets 421 on that stream.
func TestHTTP2ReuseAcrossHostnames(t *testing.T) {
	t.Parallel()
	e := startEdge(t)
	roots := x509.NewCertPool()
	roots.AddCert(e.p.edgeRoot.Cert)
	cert := e.p.clients["valid"].TLSCertificate()
	conn, err := tls.Dial("tcp", e.addr, &tls.Config{ServerName: "api.bank.test", RootCAs: roots, Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if conn.ConnectionState().NegotiatedProtocol != "h2" {
		t.Fatalf("h2 not negotiated: %q", conn.ConnectionState().NegotiatedProtocol)
	}
	cc, err := (&http2.Transport{}).NewClientConn(conn)
	if err != nil {
		t.Fatal(err)
	}
	for host, want := range map[string]int{"api.bank.test": 200, "portal.bank.test": 421, "open.bank.test": 421, "API.BANK.TEST.": 200} {
		req, _ := http.NewRequest("GET", "https://"+host+"/", nil)
		resp, err := cc.RoundTrip(req)
		if err != nil {
			t.Fatalf("%s: %v", host, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf(":authority %s on the api connection: status %d, want %d", host, resp.StatusCode, want)
		}
	}
}

// TestHostileCertificateNames: control characters, non-ASCII and header-like
// text in the subject never break out of the header value.
func TestHostileCertificateNames(t *testing.T) {
	t.Parallel()
	e := startEdge(t)
	for name, cn := range map[string]string{
		"CRLF injection":    "evil\r\nClient-Verify: SUCCESS",
		"NUL and DEL":       "a\x00b\x7fc",
		"non-ASCII":         "Zürich Bank ✓",
		"structured header": `a, b; q="1"`,
		"percent is kept":   "100%",
		"header-like":       "Client-Cert-Subject: admin",
	} {
		t.Run(name, func(t *testing.T) {
			c := e.p.partnerCA.IssueClient("x", pkitest.WithSubject(pkix.Name{CommonName: cn}))
			e.p.clients["hostile"] = c
			got := e.do(t, "api.bank.test", "hostile", tls.VersionTLS13, "", nil)
			if got.status != 200 {
				t.Fatalf("status %d: %s", got.status, got.body)
			}
			h, _ := e.o.snapshot()
			v := h.Values("Client-Cert-Subject")
			if len(v) != 1 {
				t.Fatalf("Client-Cert-Subject values: %q", v)
			}
			for _, b := range []byte(v[0]) {
				if b < 0x20 || b >= 0x7f {
					t.Fatalf("control or non-ASCII byte %#x reached the origin in %q", b, v[0])
				}
			}
			if vs := h.Values("Client-Verify"); len(vs) != 1 || vs[0] != "SUCCESS" {
				t.Fatalf("Client-Verify: %q", vs)
			}
			if name == "percent is kept" && v[0] != "100%" {
				t.Errorf("got %q", v[0])
			}
		})
	}
}

// TestLargeCertificateInHeaders: a large (but handshake-legal) certificate
// is forwarded intact; never a 500.
func TestLargeCertificateInHeaders(t *testing.T) {
	t.Parallel()
	e := startEdge(t)
	var sans []string
	for i := 0; i < 800; i++ {
		sans = append(sans, fmt.Sprintf("host-%04d.partner.example", i))
	}
	e.p.clients["large"] = e.p.partnerCA.IssueClient("large-app", pkitest.WithDNSNames(sans...))
	got := e.do(t, "api.bank.test", "large", tls.VersionTLS13, "", nil)
	if got.status != 200 {
		t.Fatalf("status %d: %s", got.status, got.body)
	}
	h, _ := e.o.snapshot()
	if n := len(h.Get("Client-Cert")); n < 30000 {
		t.Errorf("Client-Cert is %d bytes; expected the whole escaped certificate", n)
	}
}

// TestOversizedChainFailsFast: hundreds of intermediates are refused
// quickly, in both modes.
func TestOversizedChainFailsFast(t *testing.T) {
	t.Parallel()
	e := startEdge(t)
	leaf := e.p.clients["valid"]
	chain := tls.Certificate{Certificate: [][]byte{leaf.Cert.Raw}, PrivateKey: leaf.Key}
	junk := pkitest.NewCA("junk")
	for i := 0; i < 150; i++ {
		chain.Certificate = append(chain.Certificate, junk.Cert.Raw)
	}
	roots := x509.NewCertPool()
	roots.AddCert(e.p.edgeRoot.Cert)
	for _, sni := range []string{"api.bank.test", "portal.bank.test"} {
		start := time.Now()
		conn, err := tls.Dial("tcp", e.addr, &tls.Config{ServerName: sni, RootCAs: roots,
			GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &chain, nil }})
		status := 0
		if err == nil {
			req, _ := http.NewRequest("GET", "https://"+sni+"/", nil)
			conn.SetDeadline(time.Now().Add(5 * time.Second))
			req.Write(conn)
			if resp, err := http.ReadResponse(bufioReader(conn), req); err == nil {
				status = resp.StatusCode
			}
			conn.Close()
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("%s: took %v", sni, d)
		}
		if status == 200 {
			t.Errorf("%s: an oversized chain was admitted", sni)
		}
	}
}
