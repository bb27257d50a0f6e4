package edge

import (
	"crypto/x509"
	"net/http"
	"time"

	"github.com/edgectl/edgectl/pkg/pki"
	"github.com/edgectl/edgectl/pkg/rules"
)

// newClientCert formats the variables of a connection's client certificate
// with pkg/pki's formatters, once per connection. cert is nil when the
// client sent none; verify is the ssl_client_verify value and status the
// firewall's ssl_verification_status (both defaulted when empty: NONE and
// MISSING_CLIENT_CERTIFICATE without a certificate).
func newClientCert(cert *x509.Certificate, verify, status string) *rules.ClientCert {
	c := &rules.ClientCert{Verify: verify, Status: status}
	if cert == nil {
		if c.Verify == "" {
			c.Verify = rules.VerifyNone
		}
		if c.Status == "" {
			c.Status = rules.StatusMissingCertificate
		}
		return c
	}
	c.Fingerprint = pki.FingerprintSHA1(cert)
	c.FingerprintSHA256 = pki.FingerprintSHA256(cert)
	c.SubjectDN = pki.SubjectSlashDN(cert)
	c.IssuerDN = pki.IssuerSlashDN(cert)
	c.SubjectRFC2253 = pki.SubjectRFC2253(cert)
	c.SubjectCN = pki.SubjectCN(cert)
	c.Serial = pki.SerialHex(cert)
	c.NotBefore = pki.TimeStamp(cert.NotBefore)
	c.NotAfter = pki.TimeStamp(cert.NotAfter)
	c.Expiry = cert.NotAfter
	c.SANDNS = pki.SANDNS(cert)
	c.SANURI = pki.SANURI(cert)
	c.IssuerRFC2253 = pki.IssuerRFC2253(cert)
	c.ThumbprintS256 = pki.ThumbprintS256(cert)
	c.BuildPEM = func(c *rules.ClientCert, f rules.PEMForm) string {
		switch f {
		case rules.PEMEscaped:
			return pki.EscapedPEM(cert)
		case rules.PEMRaw:
			return pki.RawPEM(cert)
		case rules.PEMXFCC:
			// Its own escaped form: the connection holds only the forms
			// its application reads.
			return pki.XFCCElement(cert, c.FingerprintSHA256, pki.EscapedPEM(cert), c.SubjectRFC2253)
		}
		return ""
	}
	return c
}

// requestView fills dst, the rules engine's view of r, from the client's
// request and the facts of its connection. It shares r's strings and
// header map, so it allocates nothing; it resets dst's evaluation caches.
// host is r's normalized host.
func requestView(dst *rules.Request, r *http.Request, host string, conn *rules.Conn, now time.Time) {
	target := r.RequestURI
	if target == "" {
		// A request built in process rather than read from a client.
		target = r.URL.RequestURI()
	}
	*dst = rules.Request{
		Method: r.Method,
		Target: target,
		Path:   r.URL.Path,
		Query:  r.URL.RawQuery,
		Proto:  r.Proto,
		Header: rules.HeaderMap(r.Header),
		Host:   host,
		Scheme: "https",
		Conn:   conn,
		Now:    now,
	}
}
