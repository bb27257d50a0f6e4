package pki

import (
	"crypto/ed25519"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"net"
	"net/url"
	"testing"
	"time"
	"unicode/utf16"
)

// Golden certificates use Ed25519 keys from fixed seeds: Ed25519 signatures
// are deterministic, so the DER, and every fingerprint of it, is stable.
func seededKey(b byte) ed25519.PrivateKey {
	seed := make([]byte, ed25519.SeedSize)
	for i := range seed {
		seed[i] = b
	}
	return ed25519.NewKeyFromSeed(seed)
}

var (
	oidUnknown = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 55555, 1}
	oidEmail   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}
	oidUID     = asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 1}
	oidDC      = asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 25}
	oidSerial  = asn1.ObjectIdentifier{2, 5, 4, 5}
	oidTitle   = asn1.ObjectIdentifier{2, 5, 4, 12}
)

func atv(oid asn1.ObjectIdentifier, v any) pkix.AttributeTypeAndValue {
	return pkix.AttributeTypeAndValue{Type: oid, Value: v}
}

func bmp(s string) asn1.RawValue {
	var b []byte
	for _, u := range utf16.Encode([]rune(s)) {
		b = append(b, byte(u>>8), byte(u))
	}
	return asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagBMPString, Bytes: b}
}

func ia5(s string) asn1.RawValue {
	return asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagIA5String, Bytes: []byte(s)}
}

// goldenSubject has several RDNs in DER order, a multi-valued RDN, an
// unknown OID, a BMPString, and an IA5String. (crypto/x509 refuses certificates with non-string name values.)
var goldenSubject = pkix.RDNSequence{
	{atv(oidDC, ia5("example"))},
	{atv(asn1.ObjectIdentifier{2, 5, 4, 6}, "BR")},
	{atv(asn1.ObjectIdentifier{2, 5, 4, 8}, "Sao Paulo")},
	{atv(asn1.ObjectIdentifier{2, 5, 4, 7}, "Sao Paulo")},
	{atv(asn1.ObjectIdentifier{2, 5, 4, 10}, "Partner Bank")},
	{atv(asn1.ObjectIdentifier{2, 5, 4, 11}, "Payments"), atv(oidUID, "u-42")},
	{atv(oidTitle, bmp("Ops Lead"))},
	{atv(oidUnknown, "custom value")},
	{atv(oidSerial, "12345")},
	{atv(asn1.ObjectIdentifier{2, 5, 4, 3}, "partner-app")},
	{atv(oidEmail, ia5("ops@partner.example"))},
}

func mustRaw(t testing.TB, rdns pkix.RDNSequence) []byte {
	t.Helper()
	der, err := asn1.Marshal(rdns)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func mustCreate(t testing.TB, tmpl, parent *x509.Certificate, pub, priv any) *x509.Certificate {
	t.Helper()
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(nil, tmpl, parent, pub, priv)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

var (
	goldenStart = time.Date(2024, 3, 1, 12, 30, 45, 0, time.UTC)
	goldenEnd   = time.Date(2026, 3, 1, 12, 30, 45, 0, time.UTC)
)

// goldenCerts returns a deterministic CA and a client leaf it signed.
func goldenCerts(t testing.TB) (ca, leaf *x509.Certificate) {
	t.Helper()
	caKey, leafKey := seededKey(1), seededKey(2)
	ca = mustCreate(t, &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{Country: []string{"US"}, Organization: []string{"Example"}, CommonName: "Example Root"},
		NotBefore:             time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC),
		NotAfter:              time.Date(2034, 1, 1, 0, 0, 0, 0, time.UTC),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}, nil, leafKeyPublic(caKey), caKey)
	// The serial's DER has a leading zero byte (0x00 0x8F 0x01 0xAB).
	serial, _ := new(big.Int).SetString("8F01AB", 16)
	spiffe, _ := url.Parse("spiffe://bank.example/ns/partners/sa/app")
	other, _ := url.Parse("https://partner.example/id")
	leaf = mustCreate(t, &x509.Certificate{
		SerialNumber: serial,
		RawSubject:   mustRaw(t, goldenSubject),
		NotBefore:    goldenStart,
		NotAfter:     goldenEnd,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		DNSNames:     []string{"app.partner.example", "*.api.partner.example"},
		IPAddresses:  []net.IP{net.IPv4(192, 0, 2, 7)},
		URIs:         []*url.URL{spiffe, other},
	}, ca, leafKeyPublic(leafKey), caKey)
	return ca, leaf
}

func leafKeyPublic(k ed25519.PrivateKey) ed25519.PublicKey { return k.Public().(ed25519.PublicKey) }
