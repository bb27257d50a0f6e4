package plan

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/edgectl/edgectl/pkg/manifest"
	"github.com/edgectl/edgectl/pkg/state"
)

// fakePEM returns a PEM text of n blocks of type typ whose content is seed.
// The plan never parses certificates, so the bytes need not be DER.
func fakePEM(typ, seed string, n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "-----BEGIN %s-----\n%s\n-----END %s-----\n", typ, base64.StdEncoding.EncodeToString([]byte(fmt.Sprintf("%s-%d", seed, i))), typ)
	}
	return b.String()
}

func ptr[T any](v T) *T { return &v }

func cert(name, seed string) state.Resource {
	return state.Resource{Kind: manifest.KindCertificate, Name: name, Spec: &manifest.CertificateSpec{
		Certificate:          fakePEM("CERTIFICATE", seed, 2),
		PrivateKeyFile:       "/etc/edgectl/" + name + "-key.pem",
		PublicKeyFingerprint: "sha256:" + strings.Repeat(seed[:1], 8),
	}}
}

func trustedCA(name, seed string) state.Resource {
	return state.Resource{Kind: manifest.KindTrustedCA, Name: name, Spec: &manifest.TrustedCASpec{
		Certificate: fakePEM("CERTIFICATE", seed, 1),
		VerifyDepth: ptr(2),
	}}
}

func netList(name string, items ...string) state.Resource {
	return state.Resource{Kind: manifest.KindNetworkList, Name: name, Spec: &manifest.NetworkListSpec{Type: "ipCidr", Items: items}}
}

func header(h string) manifest.AppBehavior { return manifest.AppBehavior{AddRequestHeader: h} }

func rule(name string, behaviors ...manifest.AppBehavior) manifest.AppRule {
	return manifest.AppRule{Name: name, Phase: manifest.PhaseRequest, Active: ptr(true), Behaviors: behaviors}
}

func app(name string, mutate func(*manifest.ApplicationSpec)) state.Resource {
	spec := &manifest.ApplicationSpec{
		Origin: manifest.Origin{URL: "http://127.0.0.1:9000", HostHeader: "${host}", ConnectTimeout: "2s", ResponseTimeout: "30s"},
		Rules: []manifest.AppRule{
			{
				Name: "forward the partner's identity", Phase: manifest.PhaseRequest, Active: ptr(true),
				Criteria: [][]manifest.Criterion{{{Conditional: "if", Variable: "${ssl_client_verify}", Operator: "is_equal", Argument: ptr("SUCCESS")}}},
				Behaviors: []manifest.AppBehavior{
					header("Client-Cert: ${ssl_client_escaped_cert}"),
					header("Client-Cert-Subject: ${ssl_client_s_dn_parsed}"),
				},
			},
			rule("record the verification result", header("Client-Verify: ${ssl_client_verify}")),
		},
	}
	if mutate != nil {
		mutate(spec)
	}
	return state.Resource{Kind: manifest.KindApplication, Name: name, Spec: spec}
}

func firewall(name string, rules ...manifest.FirewallRule) state.Resource {
	return state.Resource{Kind: manifest.KindFirewall, Name: name, Spec: &manifest.FirewallSpec{Rules: rules}}
}

func domain(name string, mutate func(*manifest.DomainSpec)) state.Resource {
	spec := &manifest.DomainSpec{
		Hostnames:   []string{name + ".bank.example"},
		Certificate: "bank-edge",
		Application: "banking-api",
		MTLS:        &manifest.MTLS{Enabled: true, Verification: manifest.VerificationEnforce, TrustedCA: "partner-ca"},
	}
	if mutate != nil {
		mutate(spec)
	}
	return state.Resource{Kind: manifest.KindDomain, Name: name, Spec: spec}
}

func snapshot(serial int64, rs ...state.Resource) *state.Snapshot {
	s := &state.Snapshot{FormatVersion: state.FormatVersion, Lineage: "6f1c2a9e-0000-4000-8000-000000000001", Serial: serial, Resources: rs}
	state.SortResources(s.Resources)
	return s
}

// clone deep-copies resources through JSON, as a stored snapshot would be.
func clone(rs ...state.Resource) []state.Resource {
	data, err := json.Marshal(rs)
	if err != nil {
		panic(err)
	}
	var out []state.Resource
	if err := json.Unmarshal(data, &out); err != nil {
		panic(err)
	}
	return out
}

// goldenPlan is a plan with every kind of change: created certificate and
// network list, updated application (nested rule edit, appended rule, changed
// origin with credentials), updated domain (hostname added, firewall added,
// label added), rotated certificate, and deleted firewall and network list.
func goldenPlan() *Plan {
	prior := snapshot(7,
		cert("bank-edge", "old"),
		trustedCA("partner-ca", "ca"),
		netList("blocked-networks", "192.0.2.0/24"),
		netList("legacy-partners", "198.51.100.0/24"),
		app("banking-api", nil),
		firewall("old-firewall", manifest.FirewallRule{Name: "deny all", Active: ptr(true), Behaviors: []manifest.FirewallBehavior{{Deny: true}}}),
		domain("api", nil),
	)
	desired := []state.Resource{
		domain("api", func(d *manifest.DomainSpec) {
			d.Hostnames = append(d.Hostnames, "api2.bank.example")
			d.Firewall = "api-firewall"
		}),
		cert("bank-edge", "new"),
		trustedCA("partner-ca", "ca"),
		netList("blocked-networks", "192.0.2.0/24"),
		netList("office", "203.0.113.0/24", "2001:db8:1::/48"),
		firewall("api-firewall", manifest.FirewallRule{
			Name: "limit each partner address", Active: ptr(true),
			Behaviors: []manifest.FirewallBehavior{{SetRateLimit: &manifest.RateLimit{Type: "second", LimitBy: "clientIp", AverageRateLimit: 200, MaximumBurstSize: 400}}},
		}),
		app("banking-api", func(a *manifest.ApplicationSpec) {
			a.Origin.URL = "https://edge:s3cr3t-password@origin.bank.example"
			a.Rules[0].Behaviors[1] = header("Client-Cert-CN: ${ssl_client_s_dn_parsed}")
			a.Rules = append(a.Rules, manifest.AppRule{Name: "say which edge answered", Phase: manifest.PhaseResponse, Active: ptr(true),
				Behaviors: []manifest.AppBehavior{{AddResponseHeader: "Edge: edgectl <edge-1> & co"}}})
		}),
	}
	desired[0].Labels = map[string]string{"team": "payments", "app.kubernetes.io/part-of": "open-banking"}
	p, err := New(prior, desired)
	if err != nil {
		panic(err)
	}
	return p
}
