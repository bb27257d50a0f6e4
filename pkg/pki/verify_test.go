package pki

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/edgectl/edgectl/pkg/pki/pkitest"
	"github.com/google/go-cmp/cmp"
)

// verifyResult is what callers of VerifyClient observe.
type verifyResult struct {
	SSLClientVerify string
	Status          string
	Alert           string
}

func resultOf(e *VerifyError) verifyResult {
	r := verifyResult{SSLClientVerify: e.SSLClientVerify(), Status: e.Status()}
	if e != nil {
		r.Alert = e.Alert.String()
	}
	return r
}

func failed(reason, alert string) verifyResult {
	return verifyResult{SSLClientVerify: "FAILED:" + reason, Status: "CERTIFICATE_VERIFICATION_ERROR", Alert: alert}
}

var success = verifyResult{SSLClientVerify: "SUCCESS", Status: "SUCCESS"}

func TestVerifyClient(t *testing.T) {
	now := time.Now().Truncate(time.Second)
	past := pkitest.WithValidity(now.AddDate(-2, 0, 0), now.AddDate(-1, 0, 0))
	future := pkitest.WithValidity(now.AddDate(0, 0, 1), now.AddDate(1, 0, 0))

	root := pkitest.NewCA("partner root")
	inter := root.Intermediate("partner issuing")
	direct := root.IssueClient("direct")
	viaInter := inter.IssueClient("via-inter")

	stranger := pkitest.NewCA("stranger").IssueClient("stranger")
	// Same name as the root, different key: its CRLs must not count.
	impostor := pkitest.NewCA("partner root")

	expiredInter := root.Intermediate("old issuing", past)
	underExpired := expiredInter.IssueClient("under-expired")

	oldRoot := pkitest.NewCA("old root", past)

	pathLenRoot := pkitest.NewCA("strict root", pkitest.WithMaxPathLen(0))
	underPathLen := pathLenRoot.Intermediate("forbidden").IssueClient("too-deep")

	notCA := root.Intermediate("not a CA", pkitest.WithIsCA(false))
	underNotCA := notCA.IssueClient("under-not-ca")

	constrained := pkitest.NewCA("constrained", func(c *x509.Certificate) { c.PermittedDNSDomains = []string{"bank.example"} },
		pkitest.WithValidity(now.AddDate(-5, 0, 0), now.AddDate(5, 0, 0)))
	outside := constrained.IssueClient("outside", pkitest.WithDNSNames("evil.example"))
	excluding := pkitest.NewCA("excluding", func(c *x509.Certificate) { c.ExcludedDNSDomains = []string{"blocked.example"} })
	excluded := excluding.IssueClient("excluded", pkitest.WithDNSNames("x.blocked.example"))

	inter2 := inter.Intermediate("partner issuing 2")
	viaTwo := inter2.IssueClient("via-two")
	strangerRoot := pkitest.NewCA("stranger root")
	strangerInter := strangerRoot.Intermediate("stranger issuing")
	serverOnly := root.IssueClient("server-only", pkitest.WithExtKeyUsage(x509.ExtKeyUsageServerAuth))
	selfSigned := pkitest.NewCA("self-signed", pkitest.WithIsCA(false), pkitest.WithExtKeyUsage(x509.ExtKeyUsageClientAuth))

	long := make([]*x509.Certificate, MaxClientChain+1)
	for i := range long {
		long[i] = direct.Cert
	}

	rootOnly := VerifyOptions{Roots: root.Pool(), Now: now}
	withCRLs := func(crls ...*x509.RevocationList) VerifyOptions {
		o := rootOnly
		o.CRLs = crls
		return o
	}
	interPool := x509.NewCertPool()
	interPool.AddCert(inter.Cert)
	current := func(ca *pkitest.CA, revoked ...*big.Int) *x509.RevocationList {
		return ca.CRL(now.Add(-time.Hour), now.Add(time.Hour), revoked...)
	}

	tests := map[string]struct {
		chain []*x509.Certificate
		opts  VerifyOptions
		want  verifyResult
	}{
		"signed by the root":              {chain: []*x509.Certificate{direct.Cert}, opts: rootOnly, want: success},
		"intermediate sent by the client": {chain: viaInter.Chain, opts: rootOnly, want: success},
		"intermediate from the bundle":    {chain: []*x509.Certificate{viaInter.Cert}, opts: VerifyOptions{Roots: root.Pool(), Intermediates: interPool, Now: now}, want: success},
		"zero Now means now":              {chain: []*x509.Certificate{direct.Cert}, opts: VerifyOptions{Roots: root.Pool()}, want: success},
		"intermediate missing":            {chain: []*x509.Certificate{viaInter.Cert}, opts: rootOnly, want: failed("unable to verify the first certificate", "unknown_ca")},
		"unknown CA":                      {chain: stranger.Chain, opts: rootOnly, want: failed("unable to verify the first certificate", "unknown_ca")},
		"unknown intermediate sent":       {chain: strangerInter.IssueClient("s").Chain, opts: rootOnly, want: failed("unable to get local issuer certificate", "unknown_ca")},
		"unknown root sent":               {chain: []*x509.Certificate{strangerRoot.IssueClient("s").Cert, strangerRoot.Cert}, opts: rootOnly, want: failed("self-signed certificate in certificate chain", "unknown_ca")},
		"self-signed leaf":                {chain: selfSigned.Chain, opts: rootOnly, want: failed("self-signed certificate", "unknown_ca")},
		"nil roots fail closed":           {chain: stranger.Chain, opts: VerifyOptions{Now: now}, want: failed("unable to get local issuer certificate", "unknown_ca")},
		"empty roots fail closed":         {chain: stranger.Chain, opts: VerifyOptions{Roots: x509.NewCertPool(), Now: now}, want: failed("unable to get local issuer certificate", "unknown_ca")},
		"expired leaf":                    {chain: []*x509.Certificate{root.IssueClient("expired", past).Cert}, opts: rootOnly, want: failed("certificate has expired", "certificate_expired")},
		"leaf not yet valid":              {chain: []*x509.Certificate{root.IssueClient("early", future).Cert}, opts: rootOnly, want: failed("certificate is not yet valid", "bad_certificate")},
		"expired intermediate sent":       {chain: underExpired.Chain, opts: rootOnly, want: failed("certificate has expired", "certificate_expired")},
		"expired root in the bundle":      {chain: oldRoot.IssueClient("x").Chain, opts: VerifyOptions{Roots: oldRoot.Pool(), Now: now}, want: failed("certificate has expired", "certificate_expired")},
		"CA certificate as the leaf":      {chain: []*x509.Certificate{inter.Cert}, opts: rootOnly, want: failed("unsuitable certificate purpose", "bad_certificate")},
		"server certificate":              {chain: []*x509.Certificate{root.IssueServer([]string{"api.bank.example"}).Cert}, opts: rootOnly, want: failed("unsuitable certificate purpose", "bad_certificate")},
		"no EKU means any":                {chain: []*x509.Certificate{root.IssueClient("any", pkitest.WithExtKeyUsage()).Cert}, opts: rootOnly, want: success},
		// The depth counts intermediates, as ssl_verify_depth; past it
		// nginx reports the issuer OpenSSL stopped looking for.
		"one intermediate, depth 1":        {chain: viaInter.Chain, opts: VerifyOptions{Roots: root.Pool(), MaxDepth: 1, Now: now}, want: success},
		"two intermediates, depth 1":       {chain: viaTwo.Chain, opts: VerifyOptions{Roots: root.Pool(), MaxDepth: 1, Now: now}, want: failed("unable to get local issuer certificate", "bad_certificate")},
		"two intermediates, depth 2":       {chain: viaTwo.Chain, opts: VerifyOptions{Roots: root.Pool(), MaxDepth: 2, Now: now}, want: success},
		"path length constraint":           {chain: underPathLen.Chain, opts: VerifyOptions{Roots: pathLenRoot.Pool(), Now: now}, want: failed("path length constraint exceeded", "bad_certificate")},
		"more than MaxClientChain":         {chain: long, opts: rootOnly, want: failed("certificate chain too long", "bad_certificate")},
		"leaf revoked":                     {chain: []*x509.Certificate{direct.Cert}, opts: withCRLs(current(root, direct.Cert.SerialNumber)), want: failed("certificate revoked", "certificate_revoked")},
		"leaf revoked by intermediate":     {chain: viaInter.Chain, opts: withCRLs(current(root), current(inter, viaInter.Cert.SerialNumber)), want: failed("certificate revoked", "certificate_revoked")},
		"intermediate revoked":             {chain: viaInter.Chain, opts: withCRLs(current(root, inter.Cert.SerialNumber)), want: failed("certificate revoked", "certificate_revoked")},
		"CRL without the serial":           {chain: viaInter.Chain, opts: withCRLs(current(root, big.NewInt(12345)), current(inter)), want: success},
		"CRL by an impostor ignored":       {chain: []*x509.Certificate{direct.Cert}, opts: withCRLs(current(impostor, direct.Cert.SerialNumber)), want: success},
		"CRL past nextUpdate":              {chain: []*x509.Certificate{direct.Cert}, opts: withCRLs(root.CRL(now.Add(-2*time.Hour), now.Add(-time.Hour))), want: failed("CRL has expired", "bad_certificate")},
		"stale CRL checked before entries": {chain: []*x509.Certificate{direct.Cert}, opts: withCRLs(root.CRL(now.Add(-2*time.Hour), now.Add(-time.Hour), direct.Cert.SerialNumber)), want: failed("CRL has expired", "bad_certificate")},
		"stale CRL of another CA ignored":  {chain: []*x509.Certificate{direct.Cert}, opts: withCRLs(impostor.CRL(now.Add(-2*time.Hour), now.Add(-time.Hour))), want: success},
		"intermediate not a CA":            {chain: underNotCA.Chain, opts: rootOnly, want: failed("unsuitable certificate purpose", "bad_certificate")},
		"name constraints":                 {chain: outside.Chain, opts: VerifyOptions{Roots: constrained.Pool(), Now: now}, want: failed("permitted subtree violation", "bad_certificate")},
		"excluded name":                    {chain: excluded.Chain, opts: VerifyOptions{Roots: excluding.Pool(), Now: now}, want: failed("excluded subtree violation", "bad_certificate")},
		// OpenSSL's "ssl_client" purpose, stricter than crypto/x509.
		"anyExtendedKeyUsage alone": {chain: []*x509.Certificate{root.IssueClient("any", pkitest.WithExtKeyUsage(x509.ExtKeyUsageAny)).Cert}, opts: rootOnly, want: failed("unsuitable certificate purpose", "bad_certificate")},
		"keyEncipherment alone":     {chain: []*x509.Certificate{root.IssueClient("kenc", func(c *x509.Certificate) { c.KeyUsage = x509.KeyUsageKeyEncipherment }).Cert}, opts: rootOnly, want: failed("unsuitable certificate purpose", "bad_certificate")},
		"keyAgreement is enough":    {chain: []*x509.Certificate{root.IssueClient("kagree", func(c *x509.Certificate) { c.KeyUsage = x509.KeyUsageKeyAgreement }).Cert}, opts: rootOnly, want: success},
		// The order nginx reports several failures in: purposes after the
		// chain, revocation after purposes.
		"unknown intermediate, wrong EKU": {chain: strangerInter.IssueClient("s", pkitest.WithExtKeyUsage(x509.ExtKeyUsageServerAuth)).Chain, opts: rootOnly, want: failed("unsuitable certificate purpose", "bad_certificate")},
		"lone unknown leaf, wrong EKU":    {chain: strangerRoot.IssueClient("s", pkitest.WithExtKeyUsage(x509.ExtKeyUsageServerAuth)).Chain, opts: rootOnly, want: failed("unable to verify the first certificate", "unknown_ca")},
		"revoked, wrong EKU":              {chain: []*x509.Certificate{serverOnly.Cert}, opts: withCRLs(current(root, serverOnly.Cert.SerialNumber)), want: failed("certificate revoked", "certificate_revoked")},
		"CA leaf, revoked":                {chain: []*x509.Certificate{inter.Cert}, opts: withCRLs(current(root, inter.Cert.SerialNumber)), want: failed("certificate revoked", "certificate_revoked")},
		// OpenSSL checks name constraints after validity, and nginx reports
		// the last error.
		"outside name constraints, expired": {chain: constrained.IssueClient("outside-old", pkitest.WithDNSNames("evil.example"), past).Chain, opts: VerifyOptions{Roots: constrained.Pool(), Now: now}, want: failed("permitted subtree violation", "bad_certificate")},
		"no certificate":                    {chain: nil, opts: rootOnly, want: verifyResult{SSLClientVerify: "NONE", Status: "MISSING_CLIENT_CERTIFICATE", Alert: "certificate_required"}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			verr := VerifyClient(tt.chain, tt.opts)
			if diff := cmp.Diff(tt.want, resultOf(verr)); diff != "" {
				t.Errorf("(-want +got):\n%s\nerror: %v", diff, verr)
			}
			if verr != nil && verr.Err == nil {
				t.Error("VerifyError without an underlying error")
			}
		})
	}
}

func TestMissingAndAlerts(t *testing.T) {
	got := map[string]any{
		"tls13":         AlertForMissing(tls.VersionTLS13).String(),
		"tls12":         AlertForMissing(tls.VersionTLS12).String(),
		"missing12":     resultOf(Missing(tls.VersionTLS12)),
		"missing is":    Missing(tls.VersionTLS13).IsMissing(),
		"failed is not": (&VerifyError{Reason: ReasonRevoked}).IsMissing(),
		"nil is not":    (*VerifyError)(nil).IsMissing(),
		"unwrap":        errors.Is(Missing(tls.VersionTLS13), ErrNoCertificate),
		"codes": map[string]uint8{
			AlertHandshakeFailure.String():    AlertHandshakeFailure.Code(),
			AlertBadCertificate.String():      AlertBadCertificate.Code(),
			AlertCertificateRevoked.String():  AlertCertificateRevoked.Code(),
			AlertCertificateExpired.String():  AlertCertificateExpired.Code(),
			AlertUnknownCA.String():           AlertUnknownCA.Code(),
			AlertCertificateRequired.String(): AlertCertificateRequired.Code(),
			Alert(99).String():                99,
		},
		"tls alert": AlertUnknownCA.TLSAlert().Error(),
	}
	want := map[string]any{
		"tls13":         "certificate_required",
		"tls12":         "handshake_failure",
		"missing12":     verifyResult{SSLClientVerify: "NONE", Status: "MISSING_CLIENT_CERTIFICATE", Alert: "handshake_failure"},
		"missing is":    true,
		"failed is not": false,
		"nil is not":    false,
		"unwrap":        true,
		"codes": map[string]uint8{
			"handshake_failure":    40,
			"bad_certificate":      42,
			"certificate_revoked":  44,
			"certificate_expired":  45,
			"unknown_ca":           48,
			"certificate_required": 116,
			"alert(99)":            99,
		},
		"tls alert": "tls: unknown certificate authority",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func BenchmarkVerifyClient(b *testing.B) {
	root := pkitest.NewCA("root")
	inter := root.Intermediate("inter")
	leaf := inter.IssueClient("leaf")
	now := time.Now()
	opts := VerifyOptions{Roots: root.Pool(), Now: now, CRLs: []*x509.RevocationList{
		root.CRL(now.Add(-time.Hour), now.Add(time.Hour), big.NewInt(1)),
		inter.CRL(now.Add(-time.Hour), now.Add(time.Hour), big.NewInt(2)),
	}}
	for b.Loop() {
		if err := VerifyClient(leaf.Chain, opts); err != nil {
			b.Fatal(err)
		}
	}
}
