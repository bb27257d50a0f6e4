package edge_test

import (
	"crypto/tls"
	"testing"
)

// TestIdentityPerCertificate: through the edge, connections presenting
// different certificates, in turn and again, each forward their own
// identity (the connections of one certificate share its variables).
func TestIdentityPerCertificate(t *testing.T) {
	t.Parallel()
	e := startEdge(t)
	want := map[string]string{"valid": "partner-app", "via-inter": "inter-app"}
	for _, client := range []string{"valid", "via-inter", "valid", "valid", "via-inter"} {
		got := e.do(t, "api.bank.test", client, tls.VersionTLS13, "", nil)
		if got.status != 200 {
			t.Fatalf("%s: status %d", client, got.status)
		}
		h, _ := e.o.snapshot()
		subject, verify := h.Get("Client-Cert-Subject"), h.Get("Client-Verify")
		if subject != want[client] || verify != "SUCCESS" {
			t.Errorf("%s: Client-Cert-Subject %q, Client-Verify %q; want %q and SUCCESS", client, subject, verify, want[client])
		}
	}
}
