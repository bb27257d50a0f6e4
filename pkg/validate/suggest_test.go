package validate

import "testing"

func TestSuggest(t *testing.T) {
	alerts := []string{"bad_certificate", "certificate_expired", "certificate_required", "ech_required", "unknown_ca"}
	for name, want := range map[string]string{
		"cert_required":       "certificate_required", // an abbreviation wins over a closer spelling
		"cert_expired":        "certificate_expired",
		"unknwon_ca":          "unknown_ca",
		"bad_cert":            "bad_certificate",
		"certificate_requird": "certificate_required",
		"zzz":                 "",
	} {
		if got := suggest(name, alerts); got != want {
			t.Errorf("suggest(%q) = %q, want %q", name, got, want)
		}
	}
}
