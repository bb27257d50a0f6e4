package rules

import (
	"slices"
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/edgectl/edgectl/pkg/manifest"
)

// TestVariableDocsCoverTheEngines keeps VariableDocs, from which the
// reference and edgectl explain variables are generated, equal to the
// variables the engines resolve: a variable cannot be added, renamed or
// removed without its documentation, and nothing documented is missing.
func TestVariableDocsCoverTheEngines(t *testing.T) {
	var want, got []string
	for n, k := range appVars {
		phases := "request,response"
		if (variable{kind: k}).responseOnly() {
			phases = "response"
		}
		want = append(want, "application "+n+" "+phases)
	}
	for _, p := range appPrefixes {
		phases := "request,response"
		if (variable{kind: p.kind}).responseOnly() {
			phases = "response"
		}
		want = append(want, "application "+p.prefix+"* "+phases)
	}
	for n := range firewallVars {
		want = append(want, "firewall "+n+" request")
	}
	seen := map[string]bool{}
	for _, d := range VariableDocs {
		name := d.Name
		if p, ok := d.Prefix(); ok {
			name = p + "*"
		}
		key := d.Engine + " " + name
		if seen[key] {
			t.Errorf("%s documented twice", key)
		}
		seen[key] = true
		got = append(got, key+" "+joinComma(d.Phases))
		if d.Format == "" || d.Example == "" || d.Origin == "" {
			t.Errorf("%s: format, example and origin are all required", key)
		}
		if !slices.Contains([]string{"Azion", "nginx", "edgectl"}, d.Origin) {
			t.Errorf("%s: origin %q", key, d.Origin)
		}
	}
	sort.Strings(want)
	sort.Strings(got)
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("VariableDocs differ from the engines' variables (-engines +docs):\n%s", d)
	}
}

func TestOperatorDocsCoverTheEngines(t *testing.T) {
	var want, got []string
	for n := range operators {
		want = append(want, n)
	}
	for _, o := range OperatorDocs {
		got = append(got, o.Name)
	}
	sort.Strings(want)
	sort.Strings(got)
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("OperatorDocs differ from the operators (-engines +docs):\n%s", d)
	}
}

func joinComma(s []string) string {
	out := ""
	for i, x := range s {
		if i > 0 {
			out += ","
		}
		out += x
	}
	return out
}

func TestVariablesFor(t *testing.T) {
	for _, d := range VariablesFor(EngineFirewall, "response") {
		t.Errorf("firewall variable %s in the response phase", d.Name)
	}
	resp := VariablesFor(EngineApplication, "response")
	if !slices.ContainsFunc(resp, func(d VariableDoc) bool { return d.Name == "status" }) {
		t.Error("status missing from the application's response phase")
	}
	if slices.ContainsFunc(VariablesFor(EngineApplication, "request"), func(d VariableDoc) bool { return d.Name == "status" }) {
		t.Error("status listed in the request phase")
	}
}

// TestVariableDocsSpellFamiliesAsTheLists: a family is written as
// AppVariables writes it, such as http_<header>.
func TestVariableDocsSpellFamiliesAsTheLists(t *testing.T) {
	listed := append(AppVariables(manifest.PhaseResponse), FirewallVariables()...)
	for _, d := range VariableDocs {
		if !slices.Contains(listed, d.Name) {
			t.Errorf("%s variable %q is not spelled as AppVariables or FirewallVariables list it", d.Engine, d.Name)
		}
	}
}
