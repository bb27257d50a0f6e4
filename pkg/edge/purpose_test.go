package edge_test

import (
	"crypto/tls"
	"crypto/x509"
	"testing"

	"github.com/edgectl/edgectl/pkg/pki/pkitest"
)

// TestClientPurposeAsOpenSSL: a client certificate whose usages OpenSSL's
// "ssl_client" purpose refuses, but crypto/x509 accepts, is refused in an
// Enforce handshake and counts as unverified in a Permissive domain (whose
// firewall then denies it).
func TestClientPurposeAsOpenSSL(t *testing.T) {
	e := startEdge(t)
	e.p.clients["any-eku"] = e.p.partnerCA.IssueClient("any-eku", pkitest.WithExtKeyUsage(x509.ExtKeyUsageAny))
	e.p.clients["key-enc"] = e.p.partnerCA.IssueClient("key-enc", func(c *x509.Certificate) { c.KeyUsage = x509.KeyUsageKeyEncipherment })
	for _, client := range []string{"any-eku", "key-enc"} {
		for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
			t.Run(client+"/"+tls.VersionName(v), func(t *testing.T) {
				_, before := e.o.snapshot()
				got := e.do(t, "api.bank.test", client, v, "", nil)
				if !got.rejected || got.alert != "bad_certificate" {
					t.Fatalf("enforce: want the handshake refused with bad_certificate, got %+v", got)
				}
				got = e.do(t, "portal.bank.test", client, v, "", nil)
				if got.rejected || got.status != 403 {
					t.Fatalf("permissive: want 403 from the firewall, got %+v", got)
				}
				if _, after := e.o.snapshot(); after != before {
					t.Fatal("a client with an unsuitable purpose reached the origin")
				}
			})
		}
	}
}
