package edge

import (
	"crypto/sha256"
	"crypto/x509"
	"runtime"
	"sync"
	"weak"

	"github.com/edgectl/edgectl/pkg/rules"
)

// sharedClientCerts lets the connections that present the same client
// certificate, verified with the same result, share one set of its
// variables (rules.ClientCert): a partner's API client opens many
// connections with one certificate, and each used to hold its own
// formatted subject, issuer, fingerprints and serial, about 0.8 KB per
// connection, idle ones included. Entries are weak: a ClientCert lives as
// long as a connection holds it, and its entry goes with it (as
// crypto/tls's own cache of the server certificates a client parses).
var sharedClientCerts clientCertCache

// clientCertKey is what a ClientCert's values are computed from: the
// certificate (the SHA-256 of its DER) and the two verification results.
// Nothing else of the connection or of its domain enters them.
type clientCertKey struct {
	der            [sha256.Size]byte
	verify, status string
}

// clientCertCache maps a clientCertKey to a weak.Pointer[rules.ClientCert].
type clientCertCache struct{ m sync.Map }

// clientCertEntry is what a ClientCert's cleanup needs to remove its own
// entry, and not a newer one for the same key.
type clientCertEntry struct {
	key clientCertKey
	wp  weak.Pointer[rules.ClientCert]
}

// get returns the variables of cert under verify and status: the ones
// another connection already holds, or new ones (newClientCert). Two
// connections racing for a certificate not yet cached may each make their
// own; either is correct.
func (cc *clientCertCache) get(cert *x509.Certificate, verify, status string) *rules.ClientCert {
	if cert == nil {
		return newClientCert(nil, verify, status)
	}
	key := clientCertKey{der: sha256.Sum256(cert.Raw), verify: verify, status: status}
	if v, ok := cc.m.Load(key); ok {
		if c := v.(weak.Pointer[rules.ClientCert]).Value(); c != nil {
			return c
		}
	}
	c := newClientCert(cert, verify, status)
	e := clientCertEntry{key: key, wp: weak.Make(c)}
	cc.m.Store(key, e.wp)
	runtime.AddCleanup(c, cc.forget, e)
	return c
}

// forget removes e's entry once its ClientCert is gone, unless the key
// has a newer one.
func (cc *clientCertCache) forget(e clientCertEntry) { cc.m.CompareAndDelete(e.key, e.wp) }
