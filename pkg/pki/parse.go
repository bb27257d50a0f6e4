package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
)

// ParseCertificates returns every CERTIFICATE block of PEM data, in order.
// It fails if data holds no certificate, if a block does not parse (the error
// names the block by its 1-based position), or if data holds any other kind
// of PEM block, such as a private key.
func ParseCertificates(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	rest := data
	for n := 1; ; n++ {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		switch {
		case block.Type == "CERTIFICATE":
			cert, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("PEM block %d: parse certificate: %w", n, err)
			}
			certs = append(certs, cert)
		case strings.HasSuffix(block.Type, "PRIVATE KEY"):
			return nil, fmt.Errorf("PEM block %d is a private key (%s), not a certificate", n, block.Type)
		default:
			return nil, fmt.Errorf("PEM block %d is a %q block, not a CERTIFICATE", n, block.Type)
		}
	}
	if len(certs) == 0 {
		return nil, errors.New("no PEM CERTIFICATE block found")
	}
	return certs, nil
}

// ParsePrivateKey parses the private key in PEM data: PKCS #8 ("PRIVATE
// KEY"), PKCS #1 ("RSA PRIVATE KEY") or SEC 1 ("EC PRIVATE KEY"). Other PEM
// blocks, such as certificates, are skipped, but data must hold exactly one
// private key. Encrypted keys are refused. Errors never contain key material.
func ParsePrivateKey(data []byte) (crypto.Signer, error) {
	var key *pem.Block
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if !strings.HasSuffix(block.Type, "PRIVATE KEY") {
			continue
		}
		if key != nil {
			return nil, errors.New("more than one PEM private key block found")
		}
		key = block
	}
	if key == nil {
		return nil, errors.New("no PEM private key block found")
	}
	if key.Type == "ENCRYPTED PRIVATE KEY" || key.Headers["Proc-Type"] != "" {
		return nil, errors.New("encrypted private keys are not supported")
	}
	var (
		parsed any
		err    error
	)
	switch key.Type {
	case "PRIVATE KEY":
		parsed, err = x509.ParsePKCS8PrivateKey(key.Bytes)
	case "RSA PRIVATE KEY":
		parsed, err = x509.ParsePKCS1PrivateKey(key.Bytes)
	case "EC PRIVATE KEY":
		parsed, err = x509.ParseECPrivateKey(key.Bytes)
	default:
		return nil, fmt.Errorf("unsupported private key type %q", key.Type)
	}
	if err != nil {
		// The x509 errors describe the structure, never the key bytes.
		return nil, fmt.Errorf("parse %s: %w", key.Type, err)
	}
	switch k := parsed.(type) {
	case *rsa.PrivateKey:
		return k, nil
	case *ecdsa.PrivateKey:
		return k, nil
	case ed25519.PrivateKey:
		return k, nil
	default:
		return nil, fmt.Errorf("unsupported private key algorithm %T", parsed)
	}
}

// ContainsPrivateKey reports whether data holds a PEM block whose type ends
// with "PRIVATE KEY". It is used to refuse private keys written inline in
// manifests.
func ContainsPrivateKey(data []byte) bool {
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return false
		}
		if strings.HasSuffix(block.Type, "PRIVATE KEY") {
			return true
		}
	}
}

// KeyMatchesCertificate reports whether key is the private half of the public
// key in cert.
func KeyMatchesCertificate(key crypto.Signer, cert *x509.Certificate) bool {
	if key == nil || cert == nil {
		return false
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	return ok && pub.Equal(cert.PublicKey)
}

// PublicKeyFingerprint returns "sha256:" followed by the lowercase hex
// SHA-256 of the PKIX (SubjectPublicKeyInfo) DER encoding of pub. The state
// stores it in place of key material.
func PublicKeyFingerprint(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("marshal public key: %w", err)
	}
	sum := sha256.Sum256(der)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}

// ParseCRLs parses certificate revocation lists: one or more PEM "X509 CRL"
// blocks, or a single DER-encoded CRL. Blocks of any other type are errors.
func ParseCRLs(data []byte) ([]*x509.RevocationList, error) {
	block, rest := pem.Decode(data)
	if block == nil {
		crl, err := x509.ParseRevocationList(data)
		if err != nil {
			return nil, fmt.Errorf("parse DER CRL: %w", err)
		}
		return []*x509.RevocationList{crl}, nil
	}
	var crls []*x509.RevocationList
	for n := 1; block != nil; n++ {
		if block.Type != "X509 CRL" {
			return nil, fmt.Errorf("PEM block %d is a %q block, not an X509 CRL", n, block.Type)
		}
		crl, err := x509.ParseRevocationList(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("PEM block %d: parse CRL: %w", n, err)
		}
		crls = append(crls, crl)
		block, rest = pem.Decode(rest)
	}
	return crls, nil
}

// CRLSignedBy returns the first certificate of cas whose key signed crl, and
// whether there is one.
func CRLSignedBy(crl *x509.RevocationList, cas []*x509.Certificate) (*x509.Certificate, bool) {
	for _, ca := range cas {
		if crl.CheckSignatureFrom(ca) == nil {
			return ca, true
		}
	}
	return nil, false
}

// CoversHostname reports whether cert is valid for hostname, ignoring case
// and one trailing dot. A wildcard hostname such as "*.example.com" is covered
// only by an identical wildcard DNS SAN; any other hostname is covered as
// [x509.Certificate.VerifyHostname] decides: an exact DNS (or IP) SAN, or a
// wildcard DNS SAN for its first label.
func CoversHostname(cert *x509.Certificate, hostname string) bool {
	host := strings.ToLower(strings.TrimSuffix(hostname, "."))
	if host == "" {
		return false
	}
	if strings.HasPrefix(host, "*.") {
		for _, san := range cert.DNSNames {
			if strings.EqualFold(strings.TrimSuffix(san, "."), host) {
				return true
			}
		}
		return false
	}
	return cert.VerifyHostname(host) == nil
}

// WithoutPrivateKeys returns data with every private-key PEM block removed,
// for files that bundle a certificate chain with its key (which edgectl
// reads separately, from privateKeyFile or privateKeyEnv).
func WithoutPrivateKeys(data []byte) []byte {
	var out []byte
	for {
		block, rest := pem.Decode(data)
		if block == nil {
			return out
		}
		if !strings.HasSuffix(block.Type, "PRIVATE KEY") {
			out = append(out, pem.EncodeToMemory(block)...)
		}
		data = rest
	}
}
