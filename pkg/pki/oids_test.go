package pki

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/edgectl/edgectl/internal/tooltest"
)

// TestOIDTableMatchesOpenSSL compares the generated table of attribute
// names with the installed openssl's object table: every OID both know
// must have the same short name. Objects that only the installed OpenSSL
// knows (a newer release) are listed, not failed: regenerate oids.go with
// `go generate ./pkg/pki` to follow it.
func TestOIDTableMatchesOpenSSL(t *testing.T) {
	tooltest.Path(t, "openssl", "openssl")
	out, err := exec.Command("openssl", "list", "-objects").Output()
	if err != nil {
		t.Skipf("openssl list -objects: %v", err)
	}
	// `openssl list -objects` cuts long OIDs, some to a final ".":
	// leave those lines out (gen_oids.go asks openssl to encode them).
	var lines []string
	for _, line := range strings.Split(string(out), "\n") {
		if !strings.HasSuffix(strings.TrimSpace(line), ".") {
			lines = append(lines, line)
		}
	}
	objs, err := ParseOpenSSLObjects(strings.Join(lines, "\n"))
	if err != nil {
		t.Fatal(err)
	}
	byOID := map[string][]string{}
	for _, o := range objs {
		byOID[o.OID] = append(byOID[o.OID], o.ShortName)
	}
	var missing []string
	checked := 0
	for oid, names := range byOID {
		// Long OIDs may be cut; aliases share one OID.
		if len(oid) >= 24 || len(names) > 1 {
			continue
		}
		got, ok := opensslShortNames[oid]
		if !ok {
			missing = append(missing, oid+" "+names[0])
			continue
		}
		checked++
		if got != names[0] {
			t.Errorf("%s: table says %q, openssl %q", oid, got, names[0])
		}
	}
	if checked < 900 {
		t.Errorf("only %d objects in common with the installed openssl", checked)
	}
	if len(missing) > 0 {
		t.Logf("the installed openssl knows %d objects the table lacks (regenerate with go generate): %s", len(missing), strings.Join(missing, ", "))
	}
}

// TestParseOpenSSLObjects reads the three line shapes of `openssl list
// -objects`.
func TestParseOpenSSLObjects(t *testing.T) {
	got, err := ParseOpenSSLObjects("CN = commonName, 2.5.4.3\norganizationIdentifier = 2.5.4.97\n# None-OID object: X, x\nrsadsi = RSA Data Security, Inc., 1.2.840.113549\n")
	if err != nil {
		t.Fatal(err)
	}
	want := []OpenSSLObject{{"1.2.840.113549", "rsadsi", "RSA Data Security, Inc."}, {"2.5.4.3", "CN", "commonName"}, {"2.5.4.97", "organizationIdentifier", "organizationIdentifier"}}
	if len(got) != len(want) {
		t.Fatalf("got %v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("%d: got %+v, want %+v", i, got[i], want[i])
		}
	}
	if _, err := ParseOpenSSLObjects("no equals sign"); err == nil {
		t.Error("a line without \" = \" parsed")
	}
	if _, err := ParseOpenSSLObjects("x = y, 1.2."); err == nil {
		t.Error("a cut OID parsed")
	}
}
