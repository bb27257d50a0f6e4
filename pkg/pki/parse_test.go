package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	"github.com/edgectl/edgectl/pkg/pki/pkitest"
	"github.com/google/go-cmp/cmp"
)

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestParseCertificates(t *testing.T) {
	root := pkitest.NewCA("root")
	inter := root.Intermediate("inter")
	leaf := inter.IssueClient("leaf")
	chain := leaf.ChainPEM()
	tests := map[string]struct {
		in      []byte
		wantCNs []string
		wantErr string
	}{
		"chain in order":    {in: chain, wantCNs: []string{"leaf", "inter"}},
		"text around":       {in: []byte("subject=leaf\n" + string(chain) + "trailing\n"), wantCNs: []string{"leaf", "inter"}},
		"empty":             {in: nil, wantErr: "no PEM CERTIFICATE block found"},
		"not PEM":           {in: []byte("hello"), wantErr: "no PEM CERTIFICATE block found"},
		"private key":       {in: append(leaf.CertPEM(), leaf.KeyPEM()...), wantErr: "PEM block 2 is a private key (PRIVATE KEY), not a certificate"},
		"CRL":               {in: pkitest.EncodeCRL(root.CRL(time.Now(), time.Now().Add(time.Hour))), wantErr: `PEM block 1 is a "X509 CRL" block, not a CERTIFICATE`},
		"broken second one": {in: append(leaf.CertPEM(), pemBlock("CERTIFICATE", []byte{0x30, 0x03, 1, 2, 3})...), wantErr: "PEM block 2: parse certificate: "},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			certs, err := ParseCertificates(tt.in)
			if got := errString(err); tt.wantErr == "" && got != "" || !strings.HasPrefix(got, tt.wantErr) {
				t.Fatalf("error = %q, want prefix %q", got, tt.wantErr)
			}
			var cns []string
			for _, c := range certs {
				cns = append(cns, c.Subject.CommonName)
			}
			if diff := cmp.Diff(tt.wantCNs, cns); diff != "" {
				t.Errorf("CNs (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParsePrivateKey(t *testing.T) {
	leaf := pkitest.NewCA("root").IssueClient("leaf")
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	sec1, _ := x509.MarshalECPrivateKey(ecKey)
	ed := seededKey(9)
	pkcs8ed, _ := x509.MarshalPKCS8PrivateKey(ed)
	tests := map[string]struct {
		in      []byte
		wantErr string
	}{
		"PKCS8 EC":             {in: leaf.KeyPEM()},
		"PKCS8 Ed25519":        {in: pemBlock("PRIVATE KEY", pkcs8ed)},
		"PKCS1 RSA":            {in: pemBlock("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey))},
		"SEC1 EC":              {in: pemBlock("EC PRIVATE KEY", sec1)},
		"key after cert":       {in: append(leaf.CertPEM(), leaf.KeyPEM()...)},
		"no key":               {in: leaf.CertPEM(), wantErr: "no PEM private key block found"},
		"two keys":             {in: append(leaf.KeyPEM(), leaf.KeyPEM()...), wantErr: "more than one PEM private key block found"},
		"encrypted PKCS8":      {in: pemBlock("ENCRYPTED PRIVATE KEY", []byte{1}), wantErr: "encrypted private keys are not supported"},
		"unknown type":         {in: pemBlock("DSA PRIVATE KEY", []byte{1}), wantErr: `unsupported private key type "DSA PRIVATE KEY"`},
		"SEC1 labelled PKCS1":  {in: pemBlock("RSA PRIVATE KEY", sec1), wantErr: "parse RSA PRIVATE KEY: "},
		"garbage in PKCS8 key": {in: pemBlock("PRIVATE KEY", []byte("secret-bytes")), wantErr: "parse PRIVATE KEY: "},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			key, err := ParsePrivateKey(tt.in)
			got := errString(err)
			if tt.wantErr == "" && got != "" || !strings.HasPrefix(got, tt.wantErr) {
				t.Fatalf("error = %q, want prefix %q", got, tt.wantErr)
			}
			if strings.Contains(got, "secret-bytes") {
				t.Errorf("error leaks key bytes: %q", got)
			}
			if tt.wantErr == "" && key == nil {
				t.Error("nil key without error")
			}
		})
	}
}

func TestContainsPrivateKey(t *testing.T) {
	leaf := pkitest.NewCA("root").IssueClient("leaf")
	tests := map[string]struct {
		in   []byte
		want bool
	}{
		"certificate only": {leaf.CertPEM(), false},
		"PKCS8":            {leaf.KeyPEM(), true},
		"after a cert":     {append(leaf.CertPEM(), leaf.KeyPEM()...), true},
		"RSA label":        {pemBlock("RSA PRIVATE KEY", []byte{1}), true},
		"encrypted":        {pemBlock("ENCRYPTED PRIVATE KEY", []byte{1}), true},
		"public key":       {pemBlock("PUBLIC KEY", []byte{1}), false},
		"empty":            {nil, false},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			if got := ContainsPrivateKey(tt.in); got != tt.want {
				t.Errorf("ContainsPrivateKey = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestKeyMatchesAndFingerprint(t *testing.T) {
	ca := pkitest.NewCA("root")
	a, b := ca.IssueClient("a"), ca.IssueClient("b")
	if !KeyMatchesCertificate(a.Key, a.Cert) {
		t.Error("own key does not match")
	}
	if KeyMatchesCertificate(b.Key, a.Cert) {
		t.Error("other key matches")
	}
	if KeyMatchesCertificate(nil, a.Cert) {
		t.Error("nil key matches")
	}

	fp, err := PublicKeyFingerprint(leafKeyPublic(seededKey(1)))
	if err != nil {
		t.Fatal(err)
	}
	// An Ed25519 SubjectPublicKeyInfo is a fixed 12-byte header and the key.
	spki := append([]byte{0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00}, leafKeyPublic(seededKey(1))...)
	sum := sha256.Sum256(spki)
	want := "sha256:" + hex.EncodeToString(sum[:])
	if diff := cmp.Diff(want, fp); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if !strings.HasPrefix(fp, "sha256:") || len(fp) != len("sha256:")+64 {
		t.Errorf("fingerprint %q has the wrong shape", fp)
	}
	if _, err := PublicKeyFingerprint(struct{}{}); err == nil {
		t.Error("fingerprint of an unknown key type succeeded")
	}
}

func TestParseCRLs(t *testing.T) {
	ca := pkitest.NewCA("root")
	other := pkitest.NewCA("other")
	now := time.Now()
	crl1, crl2 := ca.CRL(now, now.Add(time.Hour)), other.CRL(now, now.Add(time.Hour))
	tests := map[string]struct {
		in      []byte
		wantN   int
		wantErr string
	}{
		"one PEM":    {in: pkitest.EncodeCRL(crl1), wantN: 1},
		"two PEM":    {in: append(pkitest.EncodeCRL(crl1), pkitest.EncodeCRL(crl2)...), wantN: 2},
		"DER":        {in: crl1.Raw, wantN: 1},
		"bad DER":    {in: []byte("garbage"), wantErr: "parse DER CRL: "},
		"cert block": {in: append(pkitest.EncodeCRL(crl1), ca.CertPEM()...), wantErr: `PEM block 2 is a "CERTIFICATE" block, not an X509 CRL`},
		"bad PEM":    {in: pemBlock("X509 CRL", []byte{0x30, 0}), wantErr: "PEM block 1: parse CRL: "},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			crls, err := ParseCRLs(tt.in)
			got := errString(err)
			if tt.wantErr == "" && got != "" || !strings.HasPrefix(got, tt.wantErr) {
				t.Fatalf("error = %q, want prefix %q", got, tt.wantErr)
			}
			if len(crls) != tt.wantN {
				t.Errorf("got %d CRLs, want %d", len(crls), tt.wantN)
			}
		})
	}

	if signer, ok := CRLSignedBy(crl1, []*x509.Certificate{other.Cert, ca.Cert}); !ok || signer != ca.Cert {
		t.Errorf("CRLSignedBy = %v, %v; want the CA", signer, ok)
	}
	if _, ok := CRLSignedBy(crl1, []*x509.Certificate{other.Cert}); ok {
		t.Error("CRLSignedBy found a signer among unrelated CAs")
	}
}

func TestCoversHostname(t *testing.T) {
	cert := pkitest.NewCA("root").IssueServer([]string{"api.bank.example", "*.partners.bank.example", "127.0.0.1"})
	tests := map[string]bool{
		"api.bank.example":          true,
		"API.Bank.Example":          true,
		"api.bank.example.":         true,
		"a.partners.bank.example":   true,
		"*.partners.bank.example":   true,
		"*.PARTNERS.bank.example":   true,
		"a.b.partners.bank.example": false,
		"partners.bank.example":     false,
		"*.bank.example":            false,
		"portal.bank.example":       false,
		"127.0.0.1":                 true,
		"":                          false,
	}
	for host, want := range tests {
		t.Run(host, func(t *testing.T) {
			if got := CoversHostname(cert.Cert, host); got != want {
				t.Errorf("CoversHostname(%q) = %v, want %v", host, got, want)
			}
		})
	}
	// A wildcard hostname is not covered by an exact SAN under it.
	exact := pkitest.NewCA("root").IssueServer([]string{"a.partners.bank.example"})
	if CoversHostname(exact.Cert, "*.partners.bank.example") {
		t.Error("exact SAN covers a wildcard hostname")
	}
}
