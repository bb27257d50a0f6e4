package plan

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/edgectl/edgectl/pkg/manifest"
	"github.com/edgectl/edgectl/pkg/state"
)

func obj(kv ...any) *Object { return object(kv...) }

func pemSummary(t *testing.T, s string) string {
	t.Helper()
	sum, ok := SummarizePEM(s)
	if !ok {
		t.Fatalf("not PEM: %q", s)
	}
	return sum
}

func TestDiff(t *testing.T) {
	rules := func(names ...string) func(*manifest.ApplicationSpec) {
		return func(a *manifest.ApplicationSpec) {
			a.Rules = nil
			for _, n := range names {
				a.Rules = append(a.Rules, rule(n, header("X-Rule: "+n)))
			}
		}
	}
	ruleObj := func(n string) *Object {
		return obj("name", n, "phase", "request", "active", true,
			"behaviors", []any{obj("addRequestHeader", "X-Rule: "+n)})
	}
	update := func(kind, name string, fields ...Field) []Change {
		return []Change{{Action: Update, Kind: kind, Name: name, Fields: fields}}
	}
	tests := map[string]struct {
		prior   []state.Resource
		desired []state.Resource
		want    []Change
	}{
		"no change": {
			prior:   []state.Resource{domain("api", nil), app("banking-api", nil)},
			desired: []state.Resource{app("banking-api", nil), domain("api", nil)},
			want:    []Change{},
		},
		"scalar change": {
			prior:   []state.Resource{domain("api", nil)},
			desired: []state.Resource{domain("api", func(d *manifest.DomainSpec) { d.Application = "other-api" })},
			want:    update("Domain", "api", Field{Path: "spec.application", Before: "banking-api", After: "other-api"}),
		},
		"number and bool change": {
			prior: []state.Resource{trustedCA("ca", "x"), app("a", nil)},
			desired: []state.Resource{
				{Kind: manifest.KindTrustedCA, Name: "ca", Spec: &manifest.TrustedCASpec{Certificate: fakePEM("CERTIFICATE", "x", 1), VerifyDepth: ptr(3)}},
				app("a", func(a *manifest.ApplicationSpec) { a.Rules[1].Active = ptr(false) }),
			},
			want: []Change{
				{Action: Update, Kind: "TrustedCA", Name: "ca", Fields: []Field{{Path: "spec.verifyDepth", Before: json.Number("2"), After: json.Number("3")}}},
				{Action: Update, Kind: "Application", Name: "a", Fields: []Field{{Path: "spec.rules[1].active", Before: true, After: false}}},
			},
		},
		"added map key": {
			prior:   []state.Resource{domain("api", nil)},
			desired: []state.Resource{domain("api", func(d *manifest.DomainSpec) { d.Firewall = "fw" })},
			want:    update("Domain", "api", Field{Path: "spec.firewall", After: "fw"}),
		},
		"removed map key holding an object": {
			prior:   []state.Resource{domain("api", nil)},
			desired: []state.Resource{domain("api", func(d *manifest.DomainSpec) { d.MTLS = nil })},
			want: update("Domain", "api", Field{Path: "spec.mtls",
				Before: obj("enabled", true, "verification", "enforce", "trustedCA", "partner-ca")}),
		},
		"list append": {
			prior:   []state.Resource{netList("n", "10.0.0.0/8")},
			desired: []state.Resource{netList("n", "10.0.0.0/8", "192.0.2.7")},
			want:    update("NetworkList", "n", Field{Path: "spec.items[1]", After: "192.0.2.7"}),
		},
		"list remove from the middle": {
			prior:   []state.Resource{netList("n", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")},
			desired: []state.Resource{netList("n", "10.0.0.0/8", "192.168.0.0/16")},
			want:    update("NetworkList", "n", Field{Path: "spec.items[1]", Before: "172.16.0.0/12"}),
		},
		"list element replaced": {
			prior:   []state.Resource{netList("n", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")},
			desired: []state.Resource{netList("n", "10.0.0.0/8", "172.16.0.0/16", "192.168.0.0/16")},
			want:    update("NetworkList", "n", Field{Path: "spec.items[1]", Before: "172.16.0.0/12", After: "172.16.0.0/16"}),
		},
		"list reorder shows the moved element once": {
			prior:   []state.Resource{app("a", rules("r1", "r2", "r3"))},
			desired: []state.Resource{app("a", rules("r3", "r1", "r2"))},
			want: update("Application", "a",
				Field{Path: "spec.rules[0]", After: ruleObj("r3")},
				Field{Path: "spec.rules[2]", Before: ruleObj("r3")},
			),
		},
		"rule inserted at the front": {
			prior:   []state.Resource{app("a", rules("r1", "r2"))},
			desired: []state.Resource{app("a", rules("r0", "r1", "r2"))},
			want:    update("Application", "a", Field{Path: "spec.rules[0]", After: ruleObj("r0")}),
		},
		"nested rule change is precise": {
			prior: []state.Resource{app("a", nil)},
			desired: []state.Resource{app("a", func(a *manifest.ApplicationSpec) {
				a.Rules[0].Behaviors[1] = header("Client-Cert-CN: ${ssl_client_s_dn_parsed}")
				a.Rules[0].Criteria[0][0].Argument = ptr("FAILED")
			})},
			want: update("Application", "a",
				Field{Path: "spec.rules[0].criteria[0][0].argument", Before: "SUCCESS", After: "FAILED"},
				Field{Path: "spec.rules[0].behaviors[1].addRequestHeader", Before: "Client-Cert-Subject: ${ssl_client_s_dn_parsed}", After: "Client-Cert-CN: ${ssl_client_s_dn_parsed}"},
			),
		},
		"edit and insert in one list": {
			prior: []state.Resource{app("a", rules("r1", "r2"))},
			desired: []state.Resource{app("a", func(a *manifest.ApplicationSpec) {
				rules("r1", "r2")(a)
				a.Rules[1].Behaviors[0] = header("X-Rule: changed")
				a.Rules = append([]manifest.AppRule{rule("r0", header("X-Rule: r0"))}, a.Rules...)
			})},
			want: update("Application", "a",
				Field{Path: "spec.rules[0]", After: ruleObj("r0")},
				Field{Path: "spec.rules[2].behaviors[0].addRequestHeader", Before: "X-Rule: r2", After: "X-Rule: changed"},
			),
		},
		"rule removed and the next one edited": {
			prior: []state.Resource{app("a", rules("r1", "r2"))},
			desired: []state.Resource{app("a", func(a *manifest.ApplicationSpec) {
				rules("r2")(a)
				a.Rules[0].Behaviors[0] = header("X-Rule: changed")
			})},
			want: update("Application", "a",
				Field{Path: "spec.rules[0].behaviors[0].addRequestHeader", Before: "X-Rule: r2", After: "X-Rule: changed"},
				Field{Path: "spec.rules[0]", Before: ruleObj("r1")},
			),
		},
		"list scalars replaced in place": {
			prior:   []state.Resource{netList("n", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")},
			desired: []state.Resource{netList("n", "10.0.0.0/9", "172.16.0.0/13", "192.168.0.0/16")},
			want: update("NetworkList", "n",
				Field{Path: "spec.items[0]", Before: "10.0.0.0/8", After: "10.0.0.0/9"},
				Field{Path: "spec.items[1]", Before: "172.16.0.0/12", After: "172.16.0.0/13"},
			),
		},
		"unrelated scalars are not paired": {
			prior:   []state.Resource{netList("n", "10.0.0.0/8", "172.16.0.0/12")},
			desired: []state.Resource{netList("n", "192.168.0.0/16")},
			want: update("NetworkList", "n",
				Field{Path: "spec.items[0]", Before: "10.0.0.0/8"},
				Field{Path: "spec.items[1]", Before: "172.16.0.0/12"},
				Field{Path: "spec.items[0]", After: "192.168.0.0/16"},
			),
		},
		"behavior kind switched within an element": {
			prior: []state.Resource{firewall("fw", manifest.FirewallRule{Name: "r", Active: ptr(true), Behaviors: []manifest.FirewallBehavior{{Deny: true}}})},
			desired: []state.Resource{firewall("fw", manifest.FirewallRule{Name: "r", Active: ptr(true), Behaviors: []manifest.FirewallBehavior{{
				SetCustomResponse: &manifest.CustomResponse{StatusCode: 403, ContentType: "text/plain", ContentBody: "no"}}}})},
			want: update("Firewall", "fw",
				Field{Path: "spec.rules[0].behaviors[0].deny", Before: true},
				Field{Path: "spec.rules[0].behaviors[0].setCustomResponse", After: obj("statusCode", json.Number("403"), "contentType", "text/plain", "contentBody", "no")},
			),
		},
		"PEM change is summarized": {
			prior:   []state.Resource{cert("edge", "old")},
			desired: []state.Resource{cert("edge", "new")},
			want: update("Certificate", "edge",
				Field{Path: "spec.certificate", Before: pemSummary(t, fakePEM("CERTIFICATE", "old", 2)), After: pemSummary(t, fakePEM("CERTIFICATE", "new", 2))},
				Field{Path: "spec.publicKeyFingerprint", Before: "sha256:oooooooo", After: "sha256:nnnnnnnn"},
			),
		},
		"origin credentials are sensitive": {
			prior:   []state.Resource{app("a", nil)},
			desired: []state.Resource{app("a", func(a *manifest.ApplicationSpec) { a.Origin.URL = "http://user:pw@127.0.0.1:9000" })},
			want:    update("Application", "a", Field{Path: "spec.origin.url", Before: "http://127.0.0.1:9000", After: "http://user:pw@127.0.0.1:9000", Sensitive: true}),
		},
		"labels, with a key that is not an identifier": {
			prior: []state.Resource{netList("n", "10.0.0.0/8")},
			desired: func() []state.Resource {
				r := netList("n", "10.0.0.0/8")
				r.Labels = map[string]string{"team": "edge", "app.kubernetes.io/name": "x"}
				return []state.Resource{r}
			}(),
			want: update("NetworkList", "n", Field{Path: "metadata", After: obj("labels", obj("app.kubernetes.io/name", "x", "team", "edge"))}),
		},
		"label value change": {
			prior: func() []state.Resource {
				r := netList("n", "10.0.0.0/8")
				r.Labels = map[string]string{"team": "edge", "app.kubernetes.io/name": "x"}
				return []state.Resource{r}
			}(),
			desired: func() []state.Resource {
				r := netList("n", "10.0.0.0/8")
				r.Labels = map[string]string{"team": "edge", "app.kubernetes.io/name": "y"}
				return []state.Resource{r}
			}(),
			want: update("NetworkList", "n", Field{Path: `metadata.labels["app.kubernetes.io/name"]`, Before: "x", After: "y"}),
		},
		"create lists every leaf": {
			desired: []state.Resource{netList("n", "10.0.0.0/8", "::1"), domain("d", func(d *manifest.DomainSpec) { d.MTLS = nil })},
			want: []Change{
				{Action: Create, Kind: "NetworkList", Name: "n", Fields: []Field{
					{Path: "spec.type", After: "ipCidr"},
					{Path: "spec.items[0]", After: "10.0.0.0/8"},
					{Path: "spec.items[1]", After: "::1"},
				}},
				{Action: Create, Kind: "Domain", Name: "d", Fields: []Field{
					{Path: "spec.hostnames[0]", After: "d.bank.example"},
					{Path: "spec.certificate", After: "bank-edge"},
					{Path: "spec.application", After: "banking-api"},
				}},
			},
		},
		"create and update in dependency order, deletes in reverse": {
			prior: []state.Resource{domain("old", nil), cert("gone", "g"), app("banking-api", nil), netList("gone-list", "10.0.0.0/8")},
			desired: []state.Resource{
				domain("new", func(d *manifest.DomainSpec) { d.MTLS = nil; d.Hostnames = nil }),
				app("banking-api", func(a *manifest.ApplicationSpec) { a.Origin.ConnectTimeout = "3s" }),
				netList("a-list"),
			},
			want: []Change{
				{Action: Create, Kind: "NetworkList", Name: "a-list", Fields: []Field{{Path: "spec.type", After: "ipCidr"}}},
				{Action: Update, Kind: "Application", Name: "banking-api", Fields: []Field{{Path: "spec.origin.connectTimeout", Before: "2s", After: "3s"}}},
				{Action: Create, Kind: "Domain", Name: "new", Fields: []Field{{Path: "spec.certificate", After: "bank-edge"}, {Path: "spec.application", After: "banking-api"}}},
				{Action: Delete, Kind: "Domain", Name: "old"},
				{Action: Delete, Kind: "NetworkList", Name: "gone-list"},
				{Action: Delete, Kind: "Certificate", Name: "gone"},
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var prior *state.Snapshot
			if tc.prior != nil {
				prior = snapshot(3, clone(tc.prior...)...)
			}
			p, err := New(prior, tc.desired)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, p.Changes); diff != "" {
				t.Errorf("changes (-want +got):\n%s", diff)
			}
			if want := summarize(tc.want); p.Summary != want {
				t.Errorf("summary = %+v, want %+v", p.Summary, want)
			}
		})
	}
}

func TestSummarizePEM(t *testing.T) {
	digest := func(blocks ...string) string {
		h := sha256.New()
		for _, s := range blocks {
			b, _ := pem.Decode([]byte(s))
			h.Write(b.Bytes)
		}
		return hex.EncodeToString(h.Sum(nil))[:12]
	}
	c1, c2 := fakePEM("CERTIFICATE", "a", 1), fakePEM("CERTIFICATE", "b", 1)
	crl := fakePEM("X509 CRL", "c", 1)
	tests := map[string]struct {
		in   string
		want string
	}{
		"one certificate":  {c1, "(PEM, 1 certificate, sha256:" + digest(c1) + "…)"},
		"chain":            {c1 + c2, "(PEM, 2 certificates, sha256:" + digest(c1, c2) + "…)"},
		"bundle and CRL":   {"\n" + c1 + crl, "(PEM, 1 certificate, 1 CRL, sha256:" + digest(c1, crl) + "…)"},
		"not PEM":          {"Client-Cert: ${ssl_client_escaped_cert}", ""},
		"broken PEM block": {"-----BEGIN CERTIFICATE-----\nnot base64!", ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, ok := SummarizePEM(tc.in)
			if got != tc.want || ok != (tc.want != "") {
				t.Errorf("SummarizePEM = %q, %v; want %q", got, ok, tc.want)
			}
			if ok && !pemSummaryRE.MatchString(got) {
				t.Errorf("summary %q is not recognised by renderers", got)
			}
		})
	}
}

func TestSensitive(t *testing.T) {
	tests := map[string]struct {
		path, key string
		v         any
		want      bool
	}{
		"private key reference by file":   {"spec.privateKeyFile", "privateKeyFile", "/etc/k.pem", false},
		"private key reference by env":    {"spec.privateKeyEnv", "privateKeyEnv", "EDGE_KEY", false},
		"public key fingerprint":          {"spec.publicKeyFingerprint", "publicKeyFingerprint", "sha256:aa", false},
		"key material field":              {"spec.privateKey", "privateKey", "x", true},
		"password field":                  {"spec.origin.password", "password", "x", true},
		"object under a secret name":      {"spec.apiKey", "apiKey", obj("value", "x"), true},
		"PEM private key anywhere":        {"spec.certificate", "certificate", "-----BEGIN EC PRIVATE KEY-----", true},
		"origin URL without credentials":  {"spec.origin.url", "url", "https://origin.example", false},
		"origin URL with credentials":     {"spec.origin.url", "url", "https://u:p@origin.example", true},
		"object holding origin URL":       {"spec.origin", "origin", obj("url", "https://u@o.example"), true},
		"header values are not secret":    {"spec.rules[0].behaviors[0].addRequestHeader", "addRequestHeader", "Authorization: Bearer abc", false},
		"custom bodies are not secret":    {"spec.rules[0].behaviors[0].setCustomResponse.contentBody", "contentBody", "token", false},
		"labels are never secret by name": {"metadata.labels.apikey", "apikey", "x", false},
		"absent":                          {"spec.privateKey", "privateKey", nil, false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := sensitive(tc.path, tc.key, tc.v); got != tc.want {
				t.Errorf("sensitive(%s, %v) = %v, want %v", tc.path, tc.v, got, tc.want)
			}
		})
	}
}

func TestMergeKeys(t *testing.T) {
	tests := map[string]struct{ b, a, want []string }{
		"same":           {[]string{"x", "y"}, []string{"x", "y"}, []string{"x", "y"}},
		"added in place": {[]string{"url", "connectTimeout"}, []string{"url", "hostHeader", "connectTimeout"}, []string{"url", "hostHeader", "connectTimeout"}},
		"removed":        {[]string{"a", "b", "c"}, []string{"a", "c"}, []string{"a", "b", "c"}},
		"both":           {[]string{"a", "b", "d"}, []string{"a", "c", "d"}, []string{"a", "b", "c", "d"}},
		"disjoint":       {[]string{"a"}, []string{"b"}, []string{"a", "b"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, mergeKeys(tc.b, tc.a)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestLongListsFallBackToIndexWise(t *testing.T) {
	var before, after []string
	for i := 0; i < 1500; i++ {
		before = append(before, "10.0."+strconv.Itoa(i/250)+"."+strconv.Itoa(i%250)+"/32")
		after = append(after, "10.1."+strconv.Itoa(i/250)+"."+strconv.Itoa(i%250)+"/32")
	}
	p, err := New(snapshot(1, netList("n", before...)), []state.Resource{netList("n", after...)})
	if err != nil {
		t.Fatal(err)
	}
	if got := len(p.Changes[0].Fields); got != 1500 {
		t.Fatalf("%d fields, want 1500 index-wise edits", got)
	}
	if f := p.Changes[0].Fields[1499]; f.Path != "spec.items[1499]" || f.Before != before[1499] || f.After != after[1499] {
		t.Errorf("last field = %+v", f)
	}
}

func TestDuplicateDesiredResourceIsAnError(t *testing.T) {
	if _, err := New(nil, []state.Resource{netList("n"), netList("n")}); err == nil || !strings.Contains(err.Error(), "NetworkList/n twice") {
		t.Errorf("err = %v", err)
	}
}
