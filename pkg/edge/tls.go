package edge

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/edgectl/edgectl/pkg/manifest"
	"github.com/edgectl/edgectl/pkg/pki"
)

// Mode is a domain's client-certificate policy.
type Mode uint8

// Client-certificate modes.
const (
	// ModeOff requests no client certificate.
	ModeOff Mode = iota
	// ModeEnforce requires a valid client certificate in the handshake.
	ModeEnforce
	// ModePermissive requests a certificate, verifies it, records the result and lets rules decide.
	ModePermissive
)

// String returns off, enforce or permissive.
func (m Mode) String() string {
	switch m {
	case ModeEnforce:
		return manifest.VerificationEnforce
	case ModePermissive:
		return manifest.VerificationPermissive
	}
	return "off"
}

// trustStore is a compiled TrustedCA: the pools, the revocation lists (whose
// signatures were checked at compile time) and the depth limit.
type trustStore struct {
	name  string
	certs []*x509.Certificate
	// pool holds every certificate of the bundle as a trust anchor, as
	// nginx's ssl_client_certificate does.
	pool  *x509.CertPool
	crls  []*x509.RevocationList
	depth int
	// revoked maps an issuer's raw subject and a serial to revocation.
	revoked map[string]map[string]bool
	// crlUntil maps an issuer's raw subject to the earliest nextUpdate of its CRLs.
	crlUntil map[string]time.Time
}

func compileTrust(name string, spec *manifest.TrustedCASpec) (*trustStore, error) {
	certs, err := pki.ParseCertificates([]byte(spec.Certificate))
	if err != nil {
		return nil, fmt.Errorf("trusted CA bundle: %w", err)
	}
	t := &trustStore{name: name, certs: certs, pool: x509.NewCertPool(), depth: manifest.DefaultVerifyDepth,
		revoked: map[string]map[string]bool{}, crlUntil: map[string]time.Time{}}
	if spec.VerifyDepth != nil {
		t.depth = *spec.VerifyDepth
	}
	for i, c := range certs {
		if !c.BasicConstraintsValid || !c.IsCA {
			return nil, fmt.Errorf("trusted CA bundle: certificate %d (%s) is not a CA", i+1, c.Subject)
		}
		t.pool.AddCert(c)
	}
	if len(certs) == 0 {
		// Fail closed: an empty pool must never mean "trust the system".
		return nil, errors.New("trusted CA bundle is empty")
	}
	if strings.TrimSpace(spec.CRL) != "" {
		crls, err := pki.ParseCRLs([]byte(spec.CRL))
		if err != nil {
			return nil, fmt.Errorf("CRL: %w", err)
		}
		for _, crl := range crls {
			issuer, ok := pki.CRLSignedBy(crl, certs)
			if !ok {
				return nil, fmt.Errorf("CRL issued by %s is not signed by the bundle", crl.Issuer)
			}
			key := string(issuer.RawSubject)
			if t.revoked[key] == nil {
				t.revoked[key] = map[string]bool{}
			}
			for _, e := range crl.RevokedCertificateEntries {
				t.revoked[key][serialKey(e.SerialNumber)] = true
			}
			if u, ok := t.crlUntil[key]; !crl.NextUpdate.IsZero() && (!ok || crl.NextUpdate.Before(u)) {
				t.crlUntil[key] = crl.NextUpdate
			}
			t.crls = append(t.crls, crl)
		}
	}
	return t, nil
}

func serialKey(n *big.Int) string { return string(n.Bytes()) }

// checkChain applies what Go's verification does not: the depth limit and
// the revocation lists. chain is a verified chain, leaf first.
func (t *trustStore) checkChain(chain []*x509.Certificate, now time.Time) *pki.VerifyError {
	if verr := pki.CheckDepth(chain, t.depth); verr != nil {
		return verr
	}
	for i := 0; i+1 < len(chain); i++ {
		issuer := string(chain[i+1].RawSubject)
		if until, ok := t.crlUntil[issuer]; ok && now.After(until) {
			return &pki.VerifyError{Reason: pki.ReasonCRLExpired, Alert: pki.AlertBadCertificate,
				Err: fmt.Errorf("CRL of %s expired at %s", chain[i+1].Subject, until.UTC().Format(time.RFC3339))}
		}
		if t.revoked[issuer][serialKey(chain[i].SerialNumber)] {
			return &pki.VerifyError{Reason: pki.ReasonRevoked, Alert: pki.AlertCertificateRevoked,
				Err: fmt.Errorf("certificate %s (serial %s) is revoked", chain[i].Subject, pki.SerialHex(chain[i]))}
		}
	}
	return nil
}

// verify checks a client chain completely (Permissive mode, and Enforce
// connections re-checked after a reload) and returns nil on success.
func (t *trustStore) verify(peer []*x509.Certificate, now time.Time) *pki.VerifyError {
	if len(peer) == 0 {
		return pki.Missing(tls.VersionTLS13)
	}
	inter := x509.NewCertPool()
	for _, c := range peer[1:] {
		inter.AddCert(c)
	}
	return pki.VerifyClient(peer, pki.VerifyOptions{Roots: t.pool, Intermediates: inter, CRLs: t.crls, MaxDepth: t.depth, Now: now})
}

// tlsPolicy is a domain's compiled TLS configuration.
type tlsPolicy struct {
	mode  Mode
	trust *trustStore
	// cert is the certificate the configuration serves (compileCache).
	cert   *compiledCert
	config *tls.Config
	// id identifies everything a session depends on (certificate, trust
	// store, CRLs, mode); session ticket keys derive from it, so a session
	// never resumes into another domain, trust store or CRL set.
	id [32]byte
}

// compileTLS builds the tls.Config of a domain.
func compileTLS(domain string, cert tls.Certificate, certPEM string, mode Mode, trust *trustStore, trustPEM string, secret []byte, now func() time.Time) *tlsPolicy {
	p := &tlsPolicy{mode: mode, trust: trust}
	h := sha256.New()
	fmt.Fprintf(h, "domain=%s\x00mode=%s\x00cert=%s\x00trust=%s\x00", domain, mode, certPEM, trustPEM)
	copy(p.id[:], h.Sum(nil))

	cfg := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
		NextProtos:   []string{"h2", "http/1.1"},
		Time:         now,
	}
	switch mode {
	case ModeEnforce:
		// Go's own verification sends the precise alerts for an unknown CA
		// and an expired certificate; depth and CRLs are checked after it,
		// in VerifyConnection, which also runs on resumed sessions.
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
		cfg.ClientCAs = trust.pool
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.VerifiedChains) == 0 {
				return errors.New("edgectl: no verified client chain")
			}
			// Go's verification is bounded and ignores unrelated certificates;
			// a client that sends hundreds of them is refused all the same.
			if verr := pki.CheckLeaf(cs.PeerCertificates[0]); verr != nil {
				return verr
			}
			if len(cs.PeerCertificates) > pki.MaxClientChain {
				return &pki.VerifyError{Reason: pki.ReasonChainTooLong, Alert: pki.AlertBadCertificate,
					Err: fmt.Errorf("client sent %d certificates, more than %d", len(cs.PeerCertificates), pki.MaxClientChain)}
			}
			if verr := trust.checkChain(cs.VerifiedChains[0], now()); verr != nil {
				return verr
			}
			return nil
		}
	case ModePermissive:
		// The certificate is requested and verified per connection by the
		// handler, which records the result for the rules.
		cfg.ClientAuth = tls.RequestClientCert
		cfg.ClientCAs = trust.pool
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write(p.id[:])
	var key [32]byte
	copy(key[:], mac.Sum(nil))
	cfg.SetSessionTicketKeys([][32]byte{key})
	p.config = cfg
	return p
}

// NormalizeName lowercases a server name or host and removes a port and one
// trailing dot, the way SNI and Host are compared with hostnames.
func NormalizeName(s string) string {
	if strings.HasPrefix(s, "[") {
		if i := strings.IndexByte(s, ']'); i > 0 {
			s = s[1:i]
		}
	} else if i := strings.LastIndexByte(s, ':'); i >= 0 && strings.Count(s, ":") == 1 {
		s = s[:i]
	}
	s = strings.TrimSuffix(s, ".")
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			return strings.ToLower(s)
		}
	}
	return s
}
