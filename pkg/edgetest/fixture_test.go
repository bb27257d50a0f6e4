package edgetest_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/edgectl/edgectl/pkg/edge"
	"github.com/edgectl/edgectl/pkg/edgetest"
	"github.com/edgectl/edgectl/pkg/manifest"
	"github.com/edgectl/edgectl/pkg/pki/pkitest"
	"github.com/edgectl/edgectl/pkg/state"
)

// fixture is a test PKI written to a directory, and the resources of an
// edge that uses it:
//   - api.bank.test: enforce, identity headers, a firewall that drops
//     /drop and answers /teapot with a custom 418;
//   - portal.bank.test: permissive, a firewall denying unverified clients;
//   - open.bank.test: no mTLS.
//
// Client certificates are in dir as NAME.pem and NAME-key.pem: valid,
// untrusted, expired; edge-root.pem verifies the edge and other-root.pem
// does not.
type fixture struct {
	dir       string
	server    *pkitest.Certificate
	resources []state.Resource
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	dir := t.TempDir()
	now := time.Now()
	edgeRoot, partners, rogue := pkitest.NewCA("edge root"), pkitest.NewCA("partner ca"), pkitest.NewCA("rogue ca")
	server := edgeRoot.IssueServer([]string{"api.bank.test", "portal.bank.test", "open.bank.test"})
	write := func(name string, data []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("edge-root.pem", edgeRoot.CertPEM())
	write("other-root.pem", pkitest.NewCA("other root").CertPEM())
	for name, c := range map[string]*pkitest.Certificate{
		"valid":     partners.IssueClient("partner-app"),
		"untrusted": rogue.IssueClient("rogue-app"),
		"expired":   partners.IssueClient("expired-app", pkitest.WithValidity(now.Add(-48*time.Hour), now.Add(-24*time.Hour))),
	} {
		if _, _, err := c.WriteFiles(dir, name); err != nil {
			t.Fatal(err)
		}
	}
	arg := func(s string) *string { return &s }
	enforce := &manifest.MTLS{Enabled: true, Verification: "enforce", TrustedCA: "partners"}
	return &fixture{dir: dir, server: server, resources: []state.Resource{
		{Kind: manifest.KindCertificate, Name: "edge", Spec: &manifest.CertificateSpec{Certificate: string(server.ChainPEM()), PrivateKeyEnv: "EDGE_KEY"}},
		{Kind: manifest.KindTrustedCA, Name: "partners", Spec: &manifest.TrustedCASpec{Certificate: string(partners.CertPEM())}},
		{Kind: manifest.KindApplication, Name: "api", Spec: &manifest.ApplicationSpec{
			Origin: manifest.Origin{URL: "https://origin.invalid/base", ConnectTimeout: "1s", ResponseTimeout: "2s", TLS: &manifest.OriginTLS{ServerName: "origin.invalid"}},
			Rules: []manifest.AppRule{
				{Name: "identity", Criteria: [][]manifest.Criterion{{{Variable: "${ssl_client_verify}", Operator: "is_equal", Argument: arg("SUCCESS")}}},
					Behaviors: []manifest.AppBehavior{{AddRequestHeader: "Client-Cert-Subject: ${ssl_client_s_dn_parsed}"}}},
				{Name: "verify", Behaviors: []manifest.AppBehavior{{AddRequestHeader: "Client-Verify: ${ssl_client_verify}"}}},
				{Name: "tag", Phase: "response", Behaviors: []manifest.AppBehavior{{AddResponseHeader: "Edge: edgectl"}}},
			},
			// The originAbsentHeaders cases send X_Spoof, which the edge
			// drops by default.
			UnderscoresInHeaders: true,
		}},
		{Kind: manifest.KindFirewall, Name: "api", Spec: &manifest.FirewallSpec{Rules: []manifest.FirewallRule{
			{Name: "drop", Criteria: [][]manifest.Criterion{{{Variable: "request_uri", Operator: "is_equal", Argument: arg("/drop")}}},
				Behaviors: []manifest.FirewallBehavior{{Drop: true}}},
			{Name: "teapot", Criteria: [][]manifest.Criterion{{{Variable: "request_uri", Operator: "is_equal", Argument: arg("/teapot")}}},
				Behaviors: []manifest.FirewallBehavior{{SetCustomResponse: &manifest.CustomResponse{StatusCode: 418, ContentType: "text/plain", ContentBody: "short and stout"}}}},
		}}},
		{Kind: manifest.KindFirewall, Name: "portal", Spec: &manifest.FirewallSpec{Rules: []manifest.FirewallRule{{
			Name:      "deny unverified",
			Criteria:  [][]manifest.Criterion{{{Variable: "client_certificate_validation", Operator: "is_not_equal", Argument: arg("true")}}},
			Behaviors: []manifest.FirewallBehavior{{Deny: true}},
		}}}},
		{Kind: manifest.KindDomain, Name: "api", Spec: &manifest.DomainSpec{Hostnames: []string{"api.bank.test"}, Certificate: "edge", Application: "api", Firewall: "api", MTLS: enforce}},
		{Kind: manifest.KindDomain, Name: "portal", Spec: &manifest.DomainSpec{Hostnames: []string{"portal.bank.test"}, Certificate: "edge", Application: "api", Firewall: "portal",
			MTLS: &manifest.MTLS{Enabled: true, Verification: "permissive", TrustedCA: "partners"}}},
		{Kind: manifest.KindDomain, Name: "open", Spec: &manifest.DomainSpec{Hostnames: []string{"open.bank.test"}, Certificate: "edge", Application: "api"}},
	}}
}

// start runs the fixture's edge in-process.
func (f *fixture) start(t testing.TB) *edgetest.Edge {
	t.Helper()
	e, err := edgetest.StartEdge(f.resources, edgetest.EdgeOptions{Compile: edge.Options{LookupEnv: func(k string) (string, bool) {
		return string(f.server.KeyPEM()), k == "EDGE_KEY"
	}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return e
}

// suite returns a suite of cases whose relative paths resolve in f.dir.
func (f *fixture) suite(name string, cases ...manifest.TestCase) edgetest.Suite {
	return edgetest.Suite{Name: name, File: filepath.Join(f.dir, name+".yaml"), Dir: f.dir,
		Spec: &manifest.TestSuiteSpec{CAFile: "edge-root.pem", Cases: cases}}
}

func client(name string) *manifest.ClientCertificate {
	return &manifest.ClientCertificate{CertificateFile: name + ".pem", PrivateKeyFile: name + "-key.pem"}
}

func tlsVersion(v string) *manifest.TestTLS { return &manifest.TestTLS{MinVersion: v, MaxVersion: v} }

func ptr[T any](v T) *T { return &v }
