package pkitest_test

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"os"
	"testing"
	"time"

	"github.com/edgectl/edgectl/pkg/pki"
	"github.com/edgectl/edgectl/pkg/pki/pkitest"
	"github.com/google/go-cmp/cmp"
)

func TestClientVerifies(t *testing.T) {
	root := pkitest.NewCA("test root")
	inter := root.Intermediate("test issuing")
	client := inter.IssueClient("ignored", pkitest.WithSubject(pkix.Name{
		Country: []string{"BR"}, Organization: []string{"Partner Bank"}, CommonName: "partner-app",
	}), pkitest.WithURIs("spiffe://bank.example/partner"), pkitest.WithSerial(big.NewInt(0x8F01)))

	if verr := pki.VerifyClient(client.Chain, pki.VerifyOptions{Roots: root.Pool(), MaxDepth: 2}); verr != nil {
		t.Fatalf("VerifyClient: %v", verr)
	}
	got := map[string]string{
		"s_dn":    pki.SubjectSlashDN(client.Cert),
		"i_dn":    pki.IssuerSlashDN(client.Cert),
		"serial":  pki.SerialHex(client.Cert),
		"san_uri": pki.SANURI(client.Cert),
	}
	want := map[string]string{
		"s_dn":    "/C=BR/O=Partner Bank/CN=partner-app",
		"i_dn":    "/CN=test issuing",
		"serial":  "8F:01",
		"san_uri": "spiffe://bank.example/partner",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}

	revoked := pkitest.NewCA("x") // unrelated CA: its CRL does not apply
	crl := inter.CRL(time.Now().Add(-time.Minute), time.Now().Add(time.Hour), client.Cert.SerialNumber)
	verr := pki.VerifyClient(client.Chain, pki.VerifyOptions{Roots: root.Pool(), CRLs: []*x509.RevocationList{crl, revoked.CRL(time.Now(), time.Now().Add(time.Hour))}})
	if diff := cmp.Diff("FAILED:certificate revoked", verr.SSLClientVerify()); diff != "" {
		t.Errorf("revoked (-want +got):\n%s", diff)
	}
}

func TestChainsAndEncodings(t *testing.T) {
	root := pkitest.NewCA("root")
	inter := root.Intermediate("inter")
	leaf := inter.IssueServer([]string{"api.bank.example", "*.partners.bank.example", "127.0.0.1"})

	names := func(certs []*x509.Certificate) []string {
		var out []string
		for _, c := range certs {
			out = append(out, c.Subject.CommonName)
		}
		return out
	}
	got := map[string][]string{
		"root chain":  names(root.Chain),
		"inter chain": names(inter.Chain),
		"leaf chain":  names(leaf.Chain),
		"dns":         leaf.Cert.DNSNames,
		"ips":         {leaf.Cert.IPAddresses[0].String()},
	}
	want := map[string][]string{
		"root chain":  {"root"},
		"inter chain": {"inter"},
		"leaf chain":  {"api.bank.example", "inter"},
		"dns":         {"api.bank.example", "*.partners.bank.example"},
		"ips":         {"127.0.0.1"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}

	certs, err := pki.ParseCertificates(leaf.ChainPEM())
	if err != nil || len(certs) != 2 {
		t.Fatalf("ParseCertificates(ChainPEM) = %d certs, %v", len(certs), err)
	}
	key, err := pki.ParsePrivateKey(leaf.KeyPEM())
	if err != nil || !pki.KeyMatchesCertificate(key, leaf.Cert) {
		t.Fatalf("ParsePrivateKey(KeyPEM) does not match: %v", err)
	}
	if _, err := tls.X509KeyPair(leaf.ChainPEM(), leaf.KeyPEM()); err != nil {
		t.Errorf("tls.X509KeyPair: %v", err)
	}
	if tc := leaf.TLSCertificate(); len(tc.Certificate) != 2 || tc.Leaf != leaf.Cert {
		t.Errorf("TLSCertificate has %d certificates", len(tc.Certificate))
	}
	crls, err := pki.ParseCRLs(pkitest.EncodeCRL(root.CRL(time.Now(), time.Now().Add(time.Hour))))
	if err != nil || len(crls) != 1 {
		t.Fatalf("ParseCRLs(EncodeCRL) = %d, %v", len(crls), err)
	}
	if second := root.CRL(time.Now(), time.Now().Add(time.Hour)); second.Number.Cmp(crls[0].Number) <= 0 {
		t.Errorf("CRL numbers do not increase: %v then %v", crls[0].Number, second.Number)
	}
}

func TestOptions(t *testing.T) {
	nb, na := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC)
	ca := pkitest.NewCA("root")
	c := ca.IssueClient("c", pkitest.WithValidity(nb, na), pkitest.WithExtKeyUsage(x509.ExtKeyUsageServerAuth), pkitest.WithIsCA(true))
	got := []any{c.Cert.NotBefore, c.Cert.NotAfter, c.Cert.ExtKeyUsage, c.Cert.IsCA}
	want := []any{nb, na, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, true}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if !ca.Cert.IsCA || ca.Cert.KeyUsage&x509.KeyUsageCRLSign == 0 {
		t.Error("NewCA is not a CRL-signing CA")
	}
}

func TestWriteFiles(t *testing.T) {
	leaf := pkitest.NewCA("root").IssueClient("partner-app")
	dir := t.TempDir()
	certPath, keyPath, err := leaf.WriteFiles(dir, "partner")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tls.LoadX509KeyPair(certPath, keyPath); err != nil {
		t.Fatalf("LoadX509KeyPair: %v", err)
	}
	info, err := os.Stat(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]any{dir + "/partner.pem", dir + "/partner-key.pem", os.FileMode(0o600)}, []any{certPath, keyPath, info.Mode().Perm()}); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// TestRawSubject: a name built by RawName keeps its string types and RDN
// order in the issued certificate, which Go reads back as written.
func TestRawSubject(t *testing.T) {
	der := pkitest.RawName(
		[]pkitest.Attr{{OID: asn1.ObjectIdentifier{2, 5, 4, 6}, Tag: asn1.TagPrintableString, Value: "BR"}},
		[]pkitest.Attr{{OID: asn1.ObjectIdentifier{2, 5, 4, 10}, Tag: asn1.TagT61String, Value: "Banco"}, {OID: asn1.ObjectIdentifier{2, 5, 4, 11}, Tag: asn1.TagUTF8String, Value: "Pix"}},
		[]pkitest.Attr{{OID: asn1.ObjectIdentifier{2, 5, 4, 3}, Tag: asn1.TagUTF8String, Value: "app"}},
	)
	cert := pkitest.NewCA("raw root").IssueClient("ignored", pkitest.WithRawSubject(der)).Cert
	if string(cert.RawSubject) != string(der) {
		t.Fatalf("RawSubject = %x, want %x", cert.RawSubject, der)
	}
	if got, want := cert.Subject.String(), "CN=app,OU=Pix,O=Banco,C=BR"; got != want {
		t.Errorf("subject %q, want %q", got, want)
	}
	var rdns pkix.RDNSequence
	if _, err := asn1.Unmarshal(cert.RawSubject, &rdns); err != nil {
		t.Fatal(err)
	}
	if len(rdns) != 3 || len(rdns[1]) != 2 {
		t.Errorf("RDNs %v, want three with a multi-valued second", rdns)
	}
	if got := pkitest.RawName(); string(got) != "\x30\x00" {
		t.Errorf("empty name %x, want 3000", got)
	}
}
