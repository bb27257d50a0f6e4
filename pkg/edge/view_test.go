package edge

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/edgectl/edgectl/pkg/rules"
)

func partnerCert(t testing.TB) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	spiffe, _ := url.Parse("spiffe://bank.example/partner")
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(0x01abcd),
		Subject:      pkix.Name{Country: []string{"BR"}, Organization: []string{"Partner Bank"}, CommonName: "partner-app"},
		NotBefore:    time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC),
		NotAfter:     time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		DNSNames:     []string{"a.example", "b.example"},
		URIs:         []*url.URL{spiffe},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// TestConnIdleReleasesPEMs: ConnIdle makes an idle connection forget the
// PEM forms of its client certificate; the next read builds the same value
// again. A connection without facts yet, or a context without a
// connection, is left alone.
func TestConnIdleReleasesPEMs(t *testing.T) {
	t.Parallel()
	c := newClientCert(partnerCert(t), rules.VerifySuccess, rules.StatusSuccess)
	build, builds := c.BuildPEM, 0
	c.BuildPEM = func(c *rules.ClientCert, f rules.PEMForm) string {
		builds++
		return build(c, f)
	}
	ctx := ConnContext(context.Background(), nil)
	ConnIdle(ctx) // no facts yet
	ConnIdle(context.Background())
	ctx.Value(connKey{}).(*connInfo).conn = &rules.Conn{Client: c}
	first := c.PEM(rules.PEMEscaped)
	if c.PEM(rules.PEMEscaped); builds != 1 {
		t.Fatalf("%d builds for two reads, want 1", builds)
	}
	ConnIdle(ctx)
	if again := c.PEM(rules.PEMEscaped); builds != 2 || again != first {
		t.Errorf("after ConnIdle: %d builds, value equal: %v; want 2 and true", builds, again == first)
	}
	for _, f := range []rules.PEMForm{rules.PEMRaw, rules.PEMXFCC} {
		if !strings.Contains(c.PEM(f), "CERTIFICATE") {
			t.Errorf("form %d: %.40q", f, c.PEM(f))
		}
	}
}

func TestNewClientCert(t *testing.T) {
	t.Parallel()
	cert := partnerCert(t)
	c := newClientCert(cert, rules.VerifySuccess, rules.StatusSuccess)
	sum := sha256.Sum256(cert.Raw)
	if c.FingerprintSHA256 != hex.EncodeToString(sum[:]) || len(c.Fingerprint) != 40 {
		t.Errorf("fingerprints %q %q", c.Fingerprint, c.FingerprintSHA256)
	}
	if esc := c.PEM(rules.PEMEscaped); !strings.HasPrefix(esc, "-----BEGIN%20CERTIFICATE-----%0A") || strings.ContainsAny(esc, "\n/+=") {
		t.Errorf("escaped cert %q", esc[:40])
	}
	got := []string{c.Verify, c.Status, c.SubjectDN, c.IssuerDN, c.SubjectRFC2253, c.SubjectCN, c.Serial, c.NotBefore, c.NotAfter, c.SANDNS, c.SANURI}
	want := []string{
		"SUCCESS", "SUCCESS", "/C=BR/O=Partner Bank/CN=partner-app", "/C=BR/O=Partner Bank/CN=partner-app",
		"CN=partner-app,O=Partner Bank,C=BR", "partner-app", "01:AB:CD", "20250102030405", "20260102030405",
		"a.example,b.example", "spiffe://bank.example/partner",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}

	failed := newClientCert(cert, "FAILED:certificate has expired", rules.StatusVerificationError)
	if failed.Verify != "FAILED:certificate has expired" || failed.Status != rules.StatusVerificationError || failed.SubjectCN != "partner-app" {
		t.Errorf("failed verification: %+v", failed)
	}

	none := newClientCert(nil, "", "")
	if diff := cmp.Diff(&rules.ClientCert{Verify: rules.VerifyNone, Status: rules.StatusMissingCertificate}, none, cmpopts.IgnoreUnexported(rules.ClientCert{})); diff != "" {
		t.Errorf("no certificate (-want +got):\n%s", diff)
	}
}

// TestRequestView is not parallel: testing.AllocsPerRun may not run in a
// parallel test.
func TestRequestView(t *testing.T) {
	conn := rules.NewConn(netip.MustParseAddrPort("203.0.113.9:50000"), netip.MustParseAddrPort("192.0.2.1:443"), nil, nil)
	now := time.Date(2025, 12, 1, 3, 4, 5, 0, time.UTC)
	read := httptest.NewRequest("POST", "/a/b%2Fc?x=1&y=%20z", nil)
	read.Header.Set("X-Tenant", "t-1")
	built, err := http.NewRequest("GET", "https://api.bank.example/p?q", nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		r    *http.Request
		want rules.Request
	}{
		"read from a client": {r: read, want: rules.Request{
			Method: "POST", Target: "/a/b%2Fc?x=1&y=%20z", Path: "/a/b/c", Query: "x=1&y=%20z", Proto: "HTTP/1.1",
			Header: rules.HeaderMap{"X-Tenant": {"t-1"}}, Host: "api.bank.example", Scheme: "https", Conn: conn, Now: now,
		}},
		// Without a RequestURI the target is the URL's origin form.
		"built in process": {r: built, want: rules.Request{
			Method: "GET", Target: "/p?q", Path: "/p", Query: "q", Proto: "HTTP/1.1",
			Header: rules.HeaderMap{}, Host: "api.bank.example", Scheme: "https", Conn: conn, Now: now,
		}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			var got rules.Request
			requestView(&got, tt.r, "api.bank.example", conn, now)
			if diff := cmp.Diff(tt.want, got, cmpopts.IgnoreUnexported(rules.Request{}, rules.Conn{}), cmpopts.EquateComparable(netip.AddrPort{})); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	// The view shares the request's header map: the headers the edge strips
	// are gone from both.
	var v rules.Request
	requestView(&v, read, "api.bank.example", conn, now)
	read.Header.Del("X-Tenant")
	if _, ok := v.Header["X-Tenant"]; ok {
		t.Error("the view holds a copy of the request's headers")
	}
	if n := testing.AllocsPerRun(100, func() { requestView(&v, read, "api.bank.example", conn, now) }); n != 0 {
		t.Errorf("requestView allocates %v times per request, want 0", n)
	}
}

// BenchmarkClientPEMAfterIdle is what the first request after an idle
// period pays to read ${ssl_client_escaped_cert} again (ConnIdle forgot
// it); later requests read it with one atomic load.
func BenchmarkClientPEMAfterIdle(b *testing.B) {
	c := newClientCert(partnerCert(b), rules.VerifySuccess, rules.StatusSuccess)
	b.ReportAllocs()
	for b.Loop() {
		c.ReleasePEMs()
		if c.PEM(rules.PEMEscaped) == "" {
			b.Fatal("no escaped PEM")
		}
	}
}
