package pkitest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"
)

// Option customizes the certificate template before it is signed. Options
// apply after the defaults of the function they are passed to, so they
// override them.
type Option func(*x509.Certificate)

// WithSubject sets the whole subject name, replacing the default of a
// single common name.
func WithSubject(name pkix.Name) Option {
	return func(t *x509.Certificate) { t.Subject = name }
}

// WithSerial sets the serial number; the default is random and positive.
func WithSerial(serial *big.Int) Option {
	return func(t *x509.Certificate) { t.SerialNumber = new(big.Int).Set(serial) }
}

// WithValidity sets NotBefore and NotAfter. The default is from one hour
// ago to one year from now.
func WithValidity(notBefore, notAfter time.Time) Option {
	return func(t *x509.Certificate) { t.NotBefore, t.NotAfter = notBefore, notAfter }
}

// WithExtKeyUsage replaces the extended key usages; with no argument the
// certificate has no EKU extension, which crypto/x509 treats as any usage.
func WithExtKeyUsage(usages ...x509.ExtKeyUsage) Option {
	return func(t *x509.Certificate) { t.ExtKeyUsage = usages }
}

// WithIsCA makes the certificate a CA (or not), setting the basic
// constraints and the certificate and CRL signing key usages.
func WithIsCA(isCA bool) Option {
	return func(t *x509.Certificate) {
		t.BasicConstraintsValid = true
		t.IsCA = isCA
		if isCA {
			t.KeyUsage |= x509.KeyUsageCertSign | x509.KeyUsageCRLSign
		} else {
			t.KeyUsage &^= x509.KeyUsageCertSign | x509.KeyUsageCRLSign
		}
	}
}

// WithMaxPathLen sets the path length constraint of a CA; zero means no
// CA may follow it.
func WithMaxPathLen(n int) Option {
	return func(t *x509.Certificate) { t.MaxPathLen, t.MaxPathLenZero = n, n == 0 }
}

// WithDNSNames adds DNS SANs.
func WithDNSNames(names ...string) Option {
	return func(t *x509.Certificate) { t.DNSNames = append(t.DNSNames, names...) }
}

// WithURIs adds URI SANs, such as SPIFFE IDs. It panics on a URI that does
// not parse.
func WithURIs(uris ...string) Option {
	parsed := make([]*url.URL, len(uris))
	for i, s := range uris {
		u, err := url.Parse(s)
		if err != nil {
			panic(fmt.Sprintf("pkitest: URI SAN %q: %v", s, err))
		}
		parsed[i] = u
	}
	return func(t *x509.Certificate) { t.URIs = append(t.URIs, parsed...) }
}

// Attr is one attribute of a hand-built distinguished name: its type, the
// ASN.1 universal tag of its string type and the value's bytes, encoded as
// given (crypto/x509 would choose the string types itself).
type Attr struct {
	OID   asn1.ObjectIdentifier
	Tag   int
	Value string
}

// RawName encodes RDNs of attributes as a DER Name, for WithRawSubject. It
// panics on an attribute encoding/asn1 cannot write (an invalid OID).
func RawName(rdns ...[]Attr) []byte {
	must := func(b []byte, err error) []byte {
		if err != nil {
			panic("pkitest: " + err.Error())
		}
		return b
	}
	var seq []byte
	for _, rdn := range rdns {
		var set []byte
		for _, a := range rdn {
			val := must(asn1.Marshal(asn1.RawValue{Class: asn1.ClassUniversal, Tag: a.Tag, Bytes: []byte(a.Value)}))
			oid := must(asn1.Marshal(a.OID))
			set = append(set, must(asn1.Marshal(asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSequence, IsCompound: true, Bytes: append(oid, val...)}))...)
		}
		seq = append(seq, must(asn1.Marshal(asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSet, IsCompound: true, Bytes: set}))...)
	}
	return must(asn1.Marshal(asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSequence, IsCompound: true, Bytes: seq}))
}

// WithRawSubject sets the subject to der, a DER Name used as it is (see
// RawName); it takes precedence over WithSubject.
func WithRawSubject(der []byte) Option {
	return func(t *x509.Certificate) { t.RawSubject = der }
}

// Certificate is a signed certificate with its private key.
type Certificate struct {
	// Cert is the certificate.
	Cert *x509.Certificate
	// Key is its private key.
	Key *ecdsa.PrivateKey
	// Chain is Cert followed by the intermediate CAs up to, not including,
	// the root: what a TLS peer sends. For a root CA it is just Cert.
	Chain []*x509.Certificate
}

// CA is a certificate authority that issues certificates and CRLs.
type CA struct {
	Certificate
	crlNumber atomic.Int64
}

// NewCA returns a self-signed root CA with common name name, valid from one
// hour ago for one year unless opts say otherwise.
func NewCA(name string, opts ...Option) *CA {
	tmpl := template(name)
	WithIsCA(true)(tmpl)
	return &CA{Certificate: *sign(tmpl, nil, opts)}
}

// Intermediate returns a CA with common name name signed by ca.
func (ca *CA) Intermediate(name string, opts ...Option) *CA {
	tmpl := template(name)
	WithIsCA(true)(tmpl)
	return &CA{Certificate: *sign(tmpl, ca, opts)}
}

// IssueServer returns a server certificate (EKU serverAuth) for hosts, the
// first of which is also its common name. Hosts that parse as IP addresses
// become IP SANs, the others DNS SANs (wildcards included).
func (ca *CA) IssueServer(hosts []string, opts ...Option) *Certificate {
	name := ""
	if len(hosts) > 0 {
		name = hosts[0]
	}
	tmpl := template(name)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	return sign(tmpl, ca, opts)
}

// IssueClient returns a client certificate (EKU clientAuth) with common
// name cn; use WithSubject for a fuller subject and WithURIs for SPIFFE IDs.
func (ca *CA) IssueClient(cn string, opts ...Option) *Certificate {
	tmpl := template(cn)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	return sign(tmpl, ca, opts)
}

// Pool returns a pool holding only ca's certificate.
func (ca *CA) Pool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	return pool
}

// CRL returns a CRL signed by ca, valid from thisUpdate to nextUpdate, that
// revokes the given serial numbers at thisUpdate. Successive CRLs of a CA
// have increasing CRL numbers.
func (ca *CA) CRL(thisUpdate, nextUpdate time.Time, revoked ...*big.Int) *x509.RevocationList {
	entries := make([]x509.RevocationListEntry, len(revoked))
	for i, serial := range revoked {
		entries[i] = x509.RevocationListEntry{SerialNumber: serial, RevocationTime: thisUpdate}
	}
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number:                    big.NewInt(ca.crlNumber.Add(1)),
		ThisUpdate:                thisUpdate,
		NextUpdate:                nextUpdate,
		RevokedCertificateEntries: entries,
	}, ca.Cert, ca.Key)
	if err != nil {
		panic("pkitest: create CRL: " + err.Error())
	}
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		panic("pkitest: parse CRL: " + err.Error())
	}
	return crl
}

// CertPEM returns the PEM encoding of the certificate alone.
func (c *Certificate) CertPEM() []byte { return EncodeCertificates(c.Cert) }

// ChainPEM returns the PEM encoding of Chain.
func (c *Certificate) ChainPEM() []byte { return EncodeCertificates(c.Chain...) }

// KeyPEM returns the PKCS #8 PEM encoding of the private key.
func (c *Certificate) KeyPEM() []byte { return EncodeKey(c.Key) }

// TLSCertificate returns Chain and Key as a tls.Certificate, Leaf set.
func (c *Certificate) TLSCertificate() tls.Certificate {
	tc := tls.Certificate{PrivateKey: c.Key, Leaf: c.Cert}
	for _, cert := range c.Chain {
		tc.Certificate = append(tc.Certificate, cert.Raw)
	}
	return tc
}

// WriteFiles writes ChainPEM to dir/name.pem and KeyPEM to
// dir/name-key.pem (mode 0600), and returns both paths.
func (c *Certificate) WriteFiles(dir, name string) (certPath, keyPath string, err error) {
	certPath = filepath.Join(dir, name+".pem")
	keyPath = filepath.Join(dir, name+"-key.pem")
	if err := os.WriteFile(certPath, c.ChainPEM(), 0o644); err != nil {
		return "", "", fmt.Errorf("write certificate: %w", err)
	}
	if err := os.WriteFile(keyPath, c.KeyPEM(), 0o600); err != nil {
		return "", "", fmt.Errorf("write private key: %w", err)
	}
	return certPath, keyPath, nil
}

// EncodeCertificates returns the PEM encoding of certs, in order.
func EncodeCertificates(certs ...*x509.Certificate) []byte {
	var out []byte
	for _, c := range certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return out
}

// EncodeKey returns the PKCS #8 PEM ("PRIVATE KEY") encoding of key.
func EncodeKey(key *ecdsa.PrivateKey) []byte {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		panic("pkitest: marshal key: " + err.Error())
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// EncodeCRL returns the PEM ("X509 CRL") encoding of crl.
func EncodeCRL(crl *x509.RevocationList) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: crl.Raw})
}

// template returns the defaults shared by every certificate.
func template(cn string) *x509.Certificate {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 63))
	if err != nil {
		panic("pkitest: serial: " + err.Error())
	}
	now := time.Now().Truncate(time.Second)
	return &x509.Certificate{
		SerialNumber: serial.Add(serial, big.NewInt(1)),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(1, 0, 0),
	}
}

// sign applies opts to tmpl, generates a key and signs tmpl with issuer, or
// self-signs it when issuer is nil.
func sign(tmpl *x509.Certificate, issuer *CA, opts []Option) *Certificate {
	for _, opt := range opts {
		opt(tmpl)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic("pkitest: generate key: " + err.Error())
	}
	parent, parentKey := tmpl, key
	if issuer != nil {
		parent, parentKey = issuer.Cert, issuer.Key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		panic("pkitest: create certificate: " + err.Error())
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		panic("pkitest: parse certificate: " + err.Error())
	}
	chain := []*x509.Certificate{cert}
	if issuer != nil && !isSelfSigned(issuer.Cert) {
		chain = append(chain, issuer.Chain...)
	}
	return &Certificate{Cert: cert, Key: key, Chain: chain}
}

func isSelfSigned(c *x509.Certificate) bool {
	return string(c.RawIssuer) == string(c.RawSubject) && c.CheckSignatureFrom(c) == nil
}
