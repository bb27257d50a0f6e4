package pki_test

import (
	"testing"

	"github.com/edgectl/edgectl/pkg/pki"
)

func TestNormalizeAlert(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"unknown_ca":                    "unknown_ca",
		"unknown_certificate_authority": "unknown_ca",
		"Unknown Certificate Authority": "unknown_ca",
		"expired_certificate":           "certificate_expired",
		"revoked_certificate":           "certificate_revoked",
		"certificate_required":          "certificate_required",
		"handshake_failure":             "handshake_failure",
		"unrecognized_name":             "unrecognized_name",
		"bad_certificate":               "bad_certificate",
	} {
		if got, ok := pki.NormalizeAlert(in); !ok || got != want {
			t.Errorf("NormalizeAlert(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	if _, ok := pki.NormalizeAlert("certificate_missing"); ok {
		t.Error("an unknown alert name was accepted")
	}
	if got := pki.AlertName(48); got != "unknown_ca" {
		t.Errorf("AlertName(48) = %q", got)
	}
}
