package validate_test

import (
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/edgectl/edgectl/pkg/manifest"
	"github.com/edgectl/edgectl/pkg/pki/pkitest"
	"github.com/edgectl/edgectl/pkg/validate"
)

// fixture writes a PKI into a temp dir and returns the dir.
func fixture(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	now := time.Now()
	root := pkitest.NewCA("edge root")
	srv := root.IssueServer([]string{"api.example.com", "*.partners.example.com"})
	soon := root.IssueServer([]string{"soon.example.com"}, pkitest.WithValidity(now.Add(-time.Hour), now.Add(10*24*time.Hour)))
	old := root.IssueServer([]string{"old.example.com"}, pkitest.WithValidity(now.Add(-48*time.Hour), now.Add(-24*time.Hour)))
	other := root.IssueServer([]string{"other.example.com"})
	clientCA := pkitest.NewCA("client ca")
	inter := clientCA.Intermediate("client intermediate")
	rogue := pkitest.NewCA("rogue ca")
	leaf := clientCA.IssueClient("partner")
	write := func(name string, data []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for name, c := range map[string]*pkitest.Certificate{"srv": srv, "soon": soon, "old": old, "other": other, "leaf": leaf} {
		if _, _, err := c.WriteFiles(dir, name); err != nil {
			t.Fatal(err)
		}
	}
	write("ca.pem", pkitest.EncodeCertificates(clientCA.Cert, inter.Cert))
	write("leaf-as-ca.pem", pkitest.EncodeCertificates(clientCA.Cert, leaf.Cert))
	write("crl.pem", pkitest.EncodeCRL(clientCA.CRL(now.Add(-time.Hour), now.Add(24*time.Hour), big.NewInt(7))))
	write("crl-expired.pem", pkitest.EncodeCRL(clientCA.CRL(now.Add(-48*time.Hour), now.Add(-time.Hour))))
	write("crl-rogue.pem", pkitest.EncodeCRL(rogue.CRL(now.Add(-time.Hour), now.Add(24*time.Hour))))
	crlDER := clientCA.CRL(now.Add(-time.Hour), now.Add(24*time.Hour)).Raw
	write("crl.der", crlDER)
	write("srv-and-key.pem", append(srv.ChainPEM(), srv.KeyPEM()...))
	write("garbage.pem", []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))
	return dir
}

const base = `apiVersion: edgectl.dev/v1
kind: Certificate
metadata: {name: srv}
spec: {certificateFile: srv.pem, privateKeyFile: srv-key.pem}
---
apiVersion: edgectl.dev/v1
kind: TrustedCA
metadata: {name: ca}
spec: {certificateFile: ca.pem}
---
apiVersion: edgectl.dev/v1
kind: Application
metadata: {name: app}
spec: {origin: {url: "http://127.0.0.1:9000"}}
---
apiVersion: edgectl.dev/v1
kind: Firewall
metadata: {name: guard}
spec:
  rules:
    - name: deny unverified
      criteria: [[{variable: client_certificate_validation, operator: is_not_equal, argument: "true"}]]
      behaviors: [{deny: true}]
---
`

// check validates base plus extra, written in dir, and returns the
// diagnostics as "path: severity: message" lines (positions are covered by
// the corpus and loader tests).
func check(t *testing.T, dir, extra string, env map[string]string) []string {
	t.Helper()
	docs, diags := manifest.Parse(filepath.Join(dir, "m.yaml"), dir, []byte(base+extra))
	if len(diags) > 0 {
		t.Fatalf("parse: %v", diags)
	}
	res := validate.Validate(docs, validate.Options{LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }})
	var out []string
	for _, d := range res.Diags.Normalized(dir, false) {
		out = append(out, d.Path+": "+d.Severity.String()+": "+d.Message)
	}
	return out
}

func TestSemanticChecks(t *testing.T) {
	dir := fixture(t)
	key, err := os.ReadFile(filepath.Join(dir, "srv-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	otherKey, _ := os.ReadFile(filepath.Join(dir, "other-key.pem"))
	tests := map[string]struct {
		extra string
		env   map[string]string
		want  []string
	}{
		"valid enforce domain": {
			extra: `kind: Domain
apiVersion: edgectl.dev/v1
metadata: {name: api}
spec: {hostnames: [api.example.com, x.partners.example.com], certificate: srv, application: app, mtls: {enabled: true, trustedCA: ca}}
`,
		},
		"references to missing resources": {
			extra: `kind: Domain
apiVersion: edgectl.dev/v1
metadata: {name: api}
spec: {hostnames: [api.example.com], certificate: srv2, application: ap, firewall: nope, mtls: {enabled: true, trustedCA: cb}}
`,
			want: []string{
				`spec.certificate: error: Certificate "srv2" not found (did you mean "srv"?)`,
				`spec.application: error: Application "ap" not found (did you mean "app"?)`,
				`spec.firewall: error: Firewall "nope" not found`,
				`spec.mtls.trustedCA: error: TrustedCA "cb" not found (did you mean "ca"?)`,
			},
		},
		"reference to the wrong kind": {
			extra: `kind: Domain
apiVersion: edgectl.dev/v1
metadata: {name: api}
spec: {hostnames: [api.example.com], certificate: ca, application: app}
`,
			want: []string{`spec.certificate: error: Certificate "ca" not found`},
		},
		"certificate does not cover a hostname": {
			extra: `kind: Domain
apiVersion: edgectl.dev/v1
metadata: {name: api}
spec: {hostnames: [api.example.com, a.b.partners.example.com], certificate: srv, application: app}
`,
			want: []string{`spec.certificate: error: Certificate "srv" does not cover hostname "a.b.partners.example.com" (its names: api.example.com, *.partners.example.com)`},
		},
		"hostname in two domains": {
			extra: `kind: Domain
apiVersion: edgectl.dev/v1
metadata: {name: one}
spec: {hostnames: [api.example.com], certificate: srv, application: app}
---
kind: Domain
apiVersion: edgectl.dev/v1
metadata: {name: two}
spec: {hostnames: [API.example.com], certificate: srv, application: app}
`,
			want: []string{`spec.hostnames[0]: error: hostname "API.example.com" already belongs to Domain "one" (line 28:8); a hostname belongs to one domain only`},
		},
		"duplicate names per kind": {
			extra: `kind: Application
apiVersion: edgectl.dev/v1
metadata: {name: app}
spec: {origin: {url: "http://127.0.0.1:9001"}}
`,
			want: []string{`metadata.name: error: Application "app" is already defined at line 13:12`},
		},
		"key does not match": {
			extra: `kind: Certificate
apiVersion: edgectl.dev/v1
metadata: {name: mismatched}
spec: {certificateFile: srv.pem, privateKeyFile: other-key.pem}
`,
			want: []string{`spec.privateKeyFile: error: private key does not match the certificate "api.example.com"`},
		},
		"key from the environment": {
			extra: `kind: Certificate
apiVersion: edgectl.dev/v1
metadata: {name: env-good}
spec: {certificateFile: srv.pem, privateKeyEnv: GOOD}
---
kind: Certificate
apiVersion: edgectl.dev/v1
metadata: {name: env-bad}
spec: {certificateFile: srv.pem, privateKeyEnv: BAD}
---
kind: Certificate
apiVersion: edgectl.dev/v1
metadata: {name: env-unset}
spec: {certificateFile: srv.pem, privateKeyEnv: UNSET}
`,
			env: map[string]string{"GOOD": string(key), "BAD": string(otherKey)},
			want: []string{
				`spec.privateKeyEnv: error: private key does not match the certificate "api.example.com"`,
				`spec.privateKeyEnv: warning: environment variable UNSET is not set here; the key is not checked and must be set where edgectl serve runs`,
			},
		},
		"missing key file is a warning": {
			extra: `kind: Certificate
apiVersion: edgectl.dev/v1
metadata: {name: elsewhere}
spec: {certificateFile: srv.pem, privateKeyFile: /nonexistent/edge.key}
`,
			want: []string{`spec.privateKeyFile: warning: cannot read "/nonexistent/edge.key" (no such file or directory); the key is not checked here and must exist where edgectl serve runs`},
		},
		"expired and expiring certificates": {
			extra: `kind: Certificate
apiVersion: edgectl.dev/v1
metadata: {name: old}
spec: {certificateFile: old.pem, privateKeyFile: old-key.pem}
---
kind: Certificate
apiVersion: edgectl.dev/v1
metadata: {name: soon}
spec: {certificateFile: soon.pem, privateKeyFile: soon-key.pem}
`,
			want: []string{
				`spec.certificateFile: error: certificate "old.example.com" expired on ` + time.Now().Add(-24*time.Hour).UTC().Format(time.DateOnly),
				`spec.certificateFile: warning: certificate "soon.example.com" expires in 9 days, on ` + time.Now().Add(10*24*time.Hour).UTC().Format(time.DateOnly),
			},
		},
		"unparsable PEM and inline key": {
			extra: `kind: Certificate
apiVersion: edgectl.dev/v1
metadata: {name: garbage}
spec: {certificateFile: garbage.pem, privateKeyFile: srv-key.pem}
---
kind: Certificate
apiVersion: edgectl.dev/v1
metadata: {name: inline}
spec:
  certificate: |
` + indent(string(key), "    ") + `
  privateKeyFile: srv-key.pem
---
kind: Certificate
apiVersion: edgectl.dev/v1
metadata: {name: combined}
spec: {certificateFile: srv-and-key.pem, privateKeyFile: srv-key.pem}
`,
			want: []string{
				`spec.certificateFile: error: `,
				`spec.certificate: error: inline private keys are refused: keys do not belong in Git; use privateKeyFile or privateKeyEnv`,
				`spec.certificateFile: warning: "srv-and-key.pem" also holds a private key, which edgectl ignores; keep keys out of Git`,
			},
		},
		"trusted CA entries must be CAs": {
			extra: `kind: TrustedCA
apiVersion: edgectl.dev/v1
metadata: {name: leafy}
spec: {certificateFile: leaf-as-ca.pem}
`,
			want: []string{`spec.certificateFile: error: certificate 2 of the bundle ("partner") is not a CA; a trusted CA bundle holds only CA certificates`},
		},
		"CRLs: PEM and DER accepted, foreign and expired refused": {
			extra: `kind: TrustedCA
apiVersion: edgectl.dev/v1
metadata: {name: with-crls}
spec: {certificateFile: ca.pem, crlFiles: [crl.pem, crl.der, crl-rogue.pem, crl-expired.pem]}
`,
			want: []string{
				`spec.crlFiles[2]: error: CRL issued by "CN=rogue ca" is not signed by any CA of the bundle`,
				`spec.crlFiles[3]: error: CRL issued by "CN=client ca" expired on `,
			},
		},
		"permissive domain without a denying firewall": {
			extra: `kind: Domain
apiVersion: edgectl.dev/v1
metadata: {name: portal}
spec: {hostnames: [api.example.com], certificate: srv, application: app, mtls: {enabled: true, verification: permissive, trustedCA: ca}}
`,
			want: []string{`spec.mtls.verification: warning: permissive mode admits clients without a valid certificate, and no firewall rule of this domain denies them (test client_certificate_validation or ssl_verification_status); a misconfigured permissive domain is a security incident`},
		},
		"permissive domain with a denying firewall": {
			extra: `kind: Domain
apiVersion: edgectl.dev/v1
metadata: {name: portal}
spec: {hostnames: [api.example.com], certificate: srv, application: app, firewall: guard, mtls: {enabled: true, verification: permissive, trustedCA: ca}}
`,
		},
		"origin checks": {
			extra: `kind: Application
apiVersion: edgectl.dev/v1
metadata: {name: creds}
spec: {origin: {url: "http://user:pw@127.0.0.1:9000", connectTimeout: 0s}}
---
kind: Application
apiVersion: edgectl.dev/v1
metadata: {name: tls-origin}
spec: {origin: {url: "https://origin.internal", tls: {caFile: garbage.pem, insecureSkipVerify: true}}}
`,
			want: []string{
				`spec.origin.url: error: origin URL must not hold credentials; they would be stored in the state`,
				`spec.origin.connectTimeout: error: "0s" is not a positive duration such as 5s or 1m30s`,
				`spec.origin.tls.caFile: error: `,
				`spec.origin.tls.insecureSkipVerify: warning: the origin's certificate is not verified; use caFile instead outside of tests`,
			},
		},
		"limits and policies": {
			extra: `kind: Application
apiVersion: edgectl.dev/v1
metadata: {name: bounded}
spec:
  origin: {url: "http://127.0.0.1:9000", maxConnections: 64, maxQueue: 0, queueTimeout: 2s}
  maxRequestBodySize: 1MiB
  requestBuffering: {size: 2MiB}
  paths: {escapedSlashes: keep, origin: original}
  underscoresInHeaders: true
---
kind: Application
apiVersion: edgectl.dev/v1
metadata: {name: wrong}
spec:
  origin: {url: "http://127.0.0.1:9000", maxConnections: 0, maxQueue: -1, queueTimeout: soon}
  maxRequestBodySize: 10MB
  requestBuffering: {enabled: false, size: 100MiB}
  paths: {escapedSlashes: decode}
`,
			want: []string{
				`spec.requestBuffering.size: warning: 2MiB is larger than maxRequestBodySize (1MiB); no more than maxRequestBodySize is ever buffered`,
				`spec.paths.origin: warning: the origin receives the path as the client sent it, which the firewall and the rules never saw: an origin that resolves dot segments or merges slashes may serve a path a rule denied`,
				// The schema refuses these; the semantic checks repeat none of them.
				"spec.origin.maxConnections: error: must be >= 1 but found 0",
				"spec.origin.maxQueue: error: must be >= 0 but found -1",
				`spec.origin.queueTimeout: error: "soon" does not match the required pattern '^([0-9]+(\\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$'`,
				`spec.maxRequestBodySize: error: "10MB" does not match the required pattern '^[0-9]+(B|KiB|MiB|GiB)?$'`,
				`spec.paths.escapedSlashes: error: must be one of "unescape", "keep", "reject"`,
				`spec.requestBuffering.size: error: 100MiB is over the largest buffer, 64MiB: buffers are memory, one per request being uploaded`,
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := check(t, dir, tc.extra, tc.env)
			// Messages that embed library errors are compared by prefix.
			for i := range got {
				if i < len(tc.want) && strings.HasSuffix(tc.want[i], ": ") || i < len(tc.want) && strings.HasSuffix(tc.want[i], " on ") {
					if strings.HasPrefix(got[i], tc.want[i]) {
						got[i] = tc.want[i]
					}
				}
			}
			if diff := cmp.Diff(sorted(tc.want), sorted(got)); diff != "" {
				t.Errorf("diagnostics (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCheckHostname(t *testing.T) {
	tests := map[string]string{
		"api.example.com":        "",
		"*.example.com":          "",
		"xn--bcher-kva.example":  "",
		"a-b.example.com":        "",
		"*":                      `hostname "*": a wildcard needs at least two labels after it`,
		"*.com":                  `hostname "*.com": a wildcard needs at least two labels after it`,
		"api.*.example.com":      `hostname "api.*.example.com": a wildcard is allowed only as the whole left-most label`,
		"f*.example.com":         `hostname "f*.example.com": a wildcard is allowed only as the whole left-most label`,
		"api.example.com.":       `hostname "api.example.com." must not end with a dot`,
		"a_b.example.com":        `hostname "a_b.example.com" has an invalid character '_'`,
		"-a.example.com":         `hostname "-a.example.com": a label must not start or end with a hyphen`,
		"a..example.com":         `hostname "a..example.com" has an empty or over-long label`,
		"":                       "hostname is empty",
		strings.Repeat("a", 64):  `hostname "` + strings.Repeat("a", 64) + `" has an empty or over-long label`,
		"1.2.3.4":                "",
		"exa mple.com":           `hostname "exa mple.com" has an invalid character ' '`,
		"api.example.com:8443":   `hostname "api.example.com:8443" has an invalid character ':'`,
		"UPPER.example.com":      "",
		"\x00.example.com":       `hostname "\x00.example.com" has an invalid character '\x00'`,
		"*.partners.example.com": "",
	}
	for in, want := range tests {
		got := ""
		if err := validate.CheckHostname(in); err != nil {
			got = err.Error()
		}
		if got != want {
			t.Errorf("CheckHostname(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestDesiredNormalization checks that defaults are filled and material inlined.
func TestDesiredNormalization(t *testing.T) {
	dir := fixture(t)
	docs, _ := manifest.Parse(filepath.Join(dir, "m.yaml"), dir, []byte(base+`kind: Domain
apiVersion: edgectl.dev/v1
metadata: {name: api}
spec: {hostnames: [X.partners.example.com, API.example.com], certificate: srv, application: app, mtls: {enabled: true, trustedCA: ca}}
`))
	res := validate.Validate(docs, validate.Options{})
	if res.Diags.HasErrors() {
		t.Fatal(res.Diags)
	}
	got := res.Desired()
	var kinds []string
	for _, r := range got {
		kinds = append(kinds, r.ID())
	}
	if diff := cmp.Diff([]string{"Certificate/srv", "TrustedCA/ca", "Application/app", "Firewall/guard", "Domain/api"}, kinds); diff != "" {
		t.Errorf("order (-want +got):\n%s", diff)
	}
	cert := got[0].Spec.(*manifest.CertificateSpec)
	if !strings.HasPrefix(cert.Certificate, "-----BEGIN CERTIFICATE-----") || cert.CertificateFile != "" {
		t.Errorf("certificate not inlined: %+v", cert)
	}
	if cert.PrivateKeyFile != filepath.Join(dir, "srv-key.pem") || !strings.HasPrefix(cert.PublicKeyFingerprint, "sha256:") {
		t.Errorf("key reference: %q %q", cert.PrivateKeyFile, cert.PublicKeyFingerprint)
	}
	ca := got[1].Spec.(*manifest.TrustedCASpec)
	if *ca.VerifyDepth != manifest.DefaultVerifyDepth || strings.Count(ca.Certificate, "BEGIN CERTIFICATE") != 2 {
		t.Errorf("trusted CA: depth %d, %d certificates", *ca.VerifyDepth, strings.Count(ca.Certificate, "BEGIN CERTIFICATE"))
	}
	app := got[2].Spec.(*manifest.ApplicationSpec)
	if diff := cmp.Diff(manifest.Origin{URL: "http://127.0.0.1:9000", HostHeader: "${host}", ConnectTimeout: "5s", ResponseTimeout: "1m0s"}, app.Origin); diff != "" {
		t.Errorf("origin defaults (-want +got):\n%s", diff)
	}
	fw := got[3].Spec.(*manifest.FirewallSpec)
	if fw.Rules[0].Active == nil || !*fw.Rules[0].Active || fw.Rules[0].Criteria[0][0].Conditional != "if" {
		t.Errorf("firewall defaults: %+v", fw.Rules[0])
	}
	dom := got[4].Spec.(*manifest.DomainSpec)
	if diff := cmp.Diff([]string{"api.example.com", "x.partners.example.com"}, dom.Hostnames); diff != "" {
		t.Errorf("hostnames (-want +got):\n%s", diff)
	}
	if dom.MTLS.Verification != "enforce" {
		t.Errorf("verification default: %q", dom.MTLS.Verification)
	}
	for _, r := range got {
		if strings.Contains(strings.ToUpper(cmp.Diff(nil, r.Spec)), "PRIVATE KEY") {
			t.Errorf("%s holds private key material", r.ID())
		}
	}
}

func indent(s, prefix string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = prefix + l
	}
	return strings.Join(lines, "\n")
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// TestValidateRunsTheServeCompiler: Validate ends by compiling the desired
// snapshot with edge.Compile; a set that passes every check must also pass
// the compiler (a refusal there would be reported here as an error).
func TestValidateRunsTheServeCompiler(t *testing.T) {
	dir := fixture(t)
	docs, _ := manifest.Parse(filepath.Join(dir, "m.yaml"), dir, []byte(base+`kind: Domain
apiVersion: edgectl.dev/v1
metadata: {name: api}
spec: {hostnames: [api.example.com], certificate: srv, application: app, firewall: guard, mtls: {enabled: true, trustedCA: ca}}
`))
	res := validate.Validate(docs, validate.Options{})
	if res.Diags.HasErrors() {
		t.Fatalf("a valid set failed: %v", res.Diags)
	}
}

// TestDesiredKeepsLimits: the application limits and policies reach the
// desired state (and so the deployed one) as written.
func TestDesiredKeepsLimits(t *testing.T) {
	dir := fixture(t)
	docs, _ := manifest.Parse(filepath.Join(dir, "m.yaml"), dir, []byte(base+`kind: Application
apiVersion: edgectl.dev/v1
metadata: {name: bounded}
spec:
  origin: {url: "http://127.0.0.1:9000", maxConnections: 64, maxQueue: 0, queueTimeout: 2s}
  maxRequestBodySize: 1MiB
  requestBuffering: {enabled: false}
  paths: {escapedSlashes: reject}
  underscoresInHeaders: true
`))
	res := validate.Validate(docs, validate.Options{})
	if res.Diags.HasErrors() {
		t.Fatal(res.Diags)
	}
	var got *manifest.ApplicationSpec
	for _, r := range res.Desired() {
		if r.ID() == "Application/bounded" {
			got = r.Spec.(*manifest.ApplicationSpec)
		}
	}
	off, conns, queue := false, 64, 0
	want := &manifest.ApplicationSpec{
		Origin: manifest.Origin{URL: "http://127.0.0.1:9000", HostHeader: "${host}", ConnectTimeout: "5s", ResponseTimeout: "1m0s",
			MaxConnections: &conns, MaxQueue: &queue, QueueTimeout: "2s"},
		MaxRequestBodySize:   "1MiB",
		RequestBuffering:     &manifest.RequestBuffering{Enabled: &off},
		Paths:                &manifest.PathPolicy{EscapedSlashes: "reject"},
		UnderscoresInHeaders: true,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("desired application (-want +got):\n%s", diff)
	}
}
