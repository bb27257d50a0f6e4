package plan

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/edgectl/edgectl/pkg/manifest"
	"github.com/edgectl/edgectl/pkg/state"
)

// fleet returns 10,000 resources: 2,500 domains, each with its own
// application (three rules), firewall (two rules) and certificate (a
// two-certificate chain of about 1 KB each). When changed is set, about 10%
// of them differ: every 10th domain gains a hostname, every 10th
// application has a header edited, every 10th firewall a rate changed and
// every 10th certificate is rotated.
func fleet(changed bool) []state.Resource {
	const domains = 2500
	body := strings.Repeat("MIIB", 180)
	rs := make([]state.Resource, 0, 4*domains)
	for i := 0; i < domains; i++ {
		name := fmt.Sprintf("tenant-%04d", i)
		touch := changed && i%10 == 0
		seed := body + name
		if touch {
			seed += "-rotated"
		}
		rs = append(rs, state.Resource{Kind: manifest.KindCertificate, Name: name, Spec: &manifest.CertificateSpec{
			Certificate:          fakePEM("CERTIFICATE", seed, 2),
			PrivateKeyFile:       "/etc/edgectl/keys/" + name + ".pem",
			PublicKeyFingerprint: "sha256:" + fmt.Sprintf("%064x", i),
		}})
		a := app(name, func(a *manifest.ApplicationSpec) {
			a.Origin.URL = fmt.Sprintf("http://10.0.%d.%d:9000", i/250, i%250)
			if touch {
				a.Rules[1].Behaviors[0] = header("Client-Verify-Result: ${ssl_client_verify}")
			}
			a.Rules = append(a.Rules, manifest.AppRule{Name: "edge header", Phase: manifest.PhaseResponse, Active: ptr(true),
				Behaviors: []manifest.AppBehavior{{AddResponseHeader: "Edge: " + name}}})
		})
		rs = append(rs, a)
		rate := 200
		if touch {
			rate = 300
		}
		rs = append(rs, firewall(name,
			manifest.FirewallRule{Name: "block listed networks", Active: ptr(true),
				Criteria:  [][]manifest.Criterion{{{Conditional: "if", Variable: "network", Operator: "is_in_list", Argument: ptr("blocked")}}},
				Behaviors: []manifest.FirewallBehavior{{Drop: true}}},
			manifest.FirewallRule{Name: "limit", Active: ptr(true),
				Behaviors: []manifest.FirewallBehavior{{SetRateLimit: &manifest.RateLimit{Type: "second", LimitBy: "clientIp", AverageRateLimit: rate, MaximumBurstSize: 2 * rate}}}},
		))
		rs = append(rs, domain(name, func(d *manifest.DomainSpec) {
			d.Certificate, d.Application, d.Firewall = name, name, name
			if touch {
				d.Hostnames = append(d.Hostnames, name+".partners.example")
			}
		}))
	}
	return rs
}

func benchSetup(b *testing.B) (*state.Snapshot, []byte, []state.Resource) {
	b.Helper()
	prior := state.Next(nil, fleet(false), time.Now())
	data, err := state.EncodeSnapshot(prior)
	if err != nil {
		b.Fatal(err)
	}
	// The stored snapshot as plan sees it: decoded from the state file.
	stored, err := state.DecodeSnapshot(data)
	if err != nil {
		b.Fatal(err)
	}
	return stored, data, fleet(true)
}

// BenchmarkPlan10k diffs 10,000 desired resources against a stored
// snapshot of 10,000 where about 10% changed.
func BenchmarkPlan10k(b *testing.B) {
	stored, _, desired := benchSetup(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p, err := New(stored, desired)
		if err != nil {
			b.Fatal(err)
		}
		if p.Summary.Update != 1000 {
			b.Fatalf("summary %+v, want 1000 updates", p.Summary)
		}
	}
}

// BenchmarkPlan10kWithStateDecode also decodes the state file (about
// 10 MB), as edgectl plan does.
func BenchmarkPlan10kWithStateDecode(b *testing.B) {
	_, data, desired := benchSetup(b)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		stored, err := state.DecodeSnapshot(data)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := New(stored, desired); err != nil {
			b.Fatal(err)
		}
	}
}

// TestPlan10kIsFast keeps the benchmark's promise in the ordinary test run:
// a 10,000-resource plan takes well under 2 seconds.
func TestPlan10kIsFast(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("timing check: not with -short or -race")
	}
	res := testing.Benchmark(BenchmarkPlan10k)
	if res.N == 0 {
		t.Fatal("benchmark failed")
	}
	if per := time.Duration(res.NsPerOp()); per > 2*time.Second {
		t.Errorf("plan of 10,000 resources took %v, want under 2s", per)
	} else {
		t.Logf("plan of 10,000 resources: %v", per)
	}
}
