package edge

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"math/big"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func testCert(t *testing.T) *x509.Certificate {
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

func TestNewClientCert(t *testing.T) {
	cert := testCert(t)
	c := NewClientCert(cert, VerifySuccess, StatusSuccess)
	sum := sha256.Sum256(cert.Raw)
	if c.FingerprintSHA256 != hex.EncodeToString(sum[:]) || len(c.Fingerprint) != 40 {
		t.Errorf("fingerprints %q %q", c.Fingerprint, c.FingerprintSHA256)
	}
	if !strings.HasPrefix(c.EscapedCert, "-----BEGIN%20CERTIFICATE-----%0A") || strings.ContainsAny(c.EscapedCert, "\n/+=") {
		t.Errorf("escaped cert %q", c.EscapedCert[:40])
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

	failed := NewClientCert(cert, "FAILED:certificate has expired", StatusVerificationError)
	if failed.Verify != "FAILED:certificate has expired" || failed.Status != StatusVerificationError || failed.SubjectCN != "partner-app" {
		t.Errorf("failed verification: %+v", failed)
	}

	none := NewClientCert(nil, "", "")
	if diff := cmp.Diff(&ClientCert{Verify: VerifyNone, Status: StatusMissingCertificate}, none); diff != "" {
		t.Errorf("no certificate (-want +got):\n%s", diff)
	}
}

func TestVariableValues(t *testing.T) {
	cert := testCert(t)
	h := httptest.NewRequest("POST", "/a/b?x=1&Y=%20z", nil)
	h.Header.Add("X-Multi", "1")
	h.Header.Add("X-Multi", "2")
	h.Header.Set("Cookie", "a=1; b=2")
	r := &Request{
		HTTP: h,
		Host: "api.bank.example",
		Conn: NewConn(netip.MustParseAddrPort("[::ffff:203.0.113.9]:50000"), netip.MustParseAddrPort("[2001:db8::1]:8443"),
			&tls.ConnectionState{ServerName: "api.bank.example", Version: tls.VersionTLS13, CipherSuite: tls.TLS_AES_128_GCM_SHA256},
			NewClientCert(cert, VerifySuccess, StatusSuccess)),
		Now: time.Date(2025, 12, 1, 3, 4, 5, 0, time.UTC),
	}
	r.HTTP.TLS = &tls.ConnectionState{}
	names := []string{
		"host", "uri", "request_uri", "request_method", "scheme", "args", "arg_y", "arg_missing", "http_x_multi", "cookie_b",
		"remote_addr", "remote_port", "server_addr", "server_port", "request", "ssl_server_name", "ssl_protocol", "ssl_cipher",
		"ssl_client_verify", "ssl_client_s_dn_parsed", "ssl_client_serial", "ssl_client_v_start", "ssl_client_v_end",
		"ssl_client_v_remain", "ssl_client_san_uri",
	}
	got := map[string]string{}
	for _, n := range names {
		v, msg := lookupAppVar(n, "request")
		if msg != "" {
			t.Fatal(msg)
		}
		got[n], _ = r.value(&v, nil)
	}
	want := map[string]string{
		"host": "api.bank.example", "uri": "/a/b", "request_uri": "/a/b?x=1&Y=%20z", "request_method": "POST", "scheme": "https",
		"args": "x=1&Y=%20z", "arg_y": "%20z", "arg_missing": "", "http_x_multi": "1, 2", "cookie_b": "2",
		"remote_addr": "203.0.113.9", "remote_port": "50000", "server_addr": "2001:db8::1", "server_port": "8443",
		"request": "POST /a/b?x=1&Y=%20z HTTP/1.1", "ssl_server_name": "api.bank.example", "ssl_protocol": "TLSv1.3",
		"ssl_cipher": "TLS_AES_128_GCM_SHA256", "ssl_client_verify": "SUCCESS", "ssl_client_s_dn_parsed": "partner-app",
		"ssl_client_serial": "01:AB:CD", "ssl_client_v_start": "20250102030405", "ssl_client_v_end": "20260102030405",
		"ssl_client_v_remain": "32", "ssl_client_san_uri": "spiffe://bank.example/partner",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestDaysRemaining(t *testing.T) {
	exp := time.Date(2026, 1, 10, 0, 0, 0, 0, time.UTC)
	got := []int{
		daysRemaining(exp, exp.Add(-48*time.Hour)), daysRemaining(exp, exp.Add(-time.Second)),
		daysRemaining(exp, exp), daysRemaining(exp, exp.Add(time.Second)), daysRemaining(exp, exp.Add(25*time.Hour)),
	}
	if diff := cmp.Diff([]int{2, 0, 0, -1, -2}, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
