package edge

import (
	"crypto/x509"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/edgectl/edgectl/pkg/rules"
)

// entries is the number of cc's entries, live or waiting for their
// cleanup.
func entries(cc *clientCertCache) int {
	n := 0
	cc.m.Range(func(any, any) bool { n++; return true })
	return n
}

// TestSharedClientCerts: connections that present the same certificate
// with the same verification results get one ClientCert; another
// certificate or another result gets its own; an entry goes once no
// connection holds its ClientCert, and the next connection makes a new one.
func TestSharedClientCerts(t *testing.T) {
	t.Parallel()
	var cc clientCertCache
	cert := partnerCert(t)
	again, err := x509.ParseCertificate(cert.Raw) // another connection's parse
	if err != nil {
		t.Fatal(err)
	}
	a := cc.get(cert, rules.VerifySuccess, rules.StatusSuccess)
	if b := cc.get(again, rules.VerifySuccess, rules.StatusSuccess); b != a {
		t.Error("the same certificate with the same results: two ClientCerts")
	}
	failed := cc.get(again, "FAILED:certificate has expired", rules.StatusVerificationError)
	if failed == a || failed.Verify != "FAILED:certificate has expired" || failed.Status != rules.StatusVerificationError {
		t.Errorf("another verification result shares the first's: %q %q", failed.Verify, failed.Status)
	}
	other := cc.get(partnerCert(t), rules.VerifySuccess, rules.StatusSuccess)
	if other == a || other.FingerprintSHA256 == a.FingerprintSHA256 {
		t.Error("another certificate shares the first's ClientCert")
	}
	if none := cc.get(nil, "", ""); none.Verify != rules.VerifyNone || entries(&cc) != 3 {
		t.Errorf("no certificate: verify %q, %d entries (want NONE and 3: it is not cached)", none.Verify, entries(&cc))
	}

	// Connections racing for a certificate get its variables, the same
	// once one is cached.
	var wg sync.WaitGroup
	got := make([]*rules.ClientCert, 16)
	fresh := partnerCert(t)
	for i := range got {
		wg.Go(func() { got[i] = cc.get(fresh, rules.VerifySuccess, rules.StatusSuccess) })
	}
	wg.Wait()
	for _, c := range got {
		if c.FingerprintSHA256 != got[0].FingerprintSHA256 || c.SubjectCN != "partner-app" {
			t.Fatalf("racing connections: %q %q", c.FingerprintSHA256, c.SubjectCN)
		}
	}
	if c := cc.get(fresh, rules.VerifySuccess, rules.StatusSuccess); !slices.Contains(got, c) {
		t.Error("after the race, the cached ClientCert is none of those handed out")
	}
	got, fresh = nil, nil

	fp := a.FingerprintSHA256
	a, failed, other = nil, nil, nil
	deadline := time.Now().Add(10 * time.Second)
	for entries(&cc) > 0 && time.Now().Before(deadline) {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	if n := entries(&cc); n != 0 {
		t.Fatalf("%d entries left after their ClientCerts were collected", n)
	}
	if c := cc.get(cert, rules.VerifySuccess, rules.StatusSuccess); c.FingerprintSHA256 != fp || entries(&cc) != 1 {
		t.Errorf("after collection: fingerprint %q (want %q), %d entries", c.FingerprintSHA256, fp, entries(&cc))
	}
}

// BenchmarkClientCert is what a connection's first request pays for its
// certificate's variables: formatted anew, or found among those of the
// connections presenting the same certificate.
func BenchmarkClientCert(b *testing.B) {
	cert := partnerCert(b)
	b.Run("formatted", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			newClientCert(cert, rules.VerifySuccess, rules.StatusSuccess)
		}
	})
	b.Run("shared", func(b *testing.B) {
		var cc clientCertCache
		held := cc.get(cert, rules.VerifySuccess, rules.StatusSuccess)
		b.ReportAllocs()
		for b.Loop() {
			cc.get(cert, rules.VerifySuccess, rules.StatusSuccess)
		}
		runtime.KeepAlive(held)
	})
}
