package validate

import (
	"regexp"
	"strings"
	"testing"

	"github.com/edgectl/edgectl/internal/reference"
	"github.com/edgectl/edgectl/pkg/manifest"
)

// TestUnknownFieldPointsToExplain: an unknown field that is no likely typo
// names the edgectl explain path that lists the fields, and that path
// resolves.
func TestUnknownFieldPointsToExplain(t *testing.T) {
	docs, diags := manifest.Parse("f.yaml", t.TempDir(), []byte(`apiVersion: edgectl.dev/v1
kind: Firewall
metadata: {name: f}
spec:
  rules:
    - name: r
      behaviors:
        - {zzzzzzzz: 1}
  qqqqqqqq: true
`))
	if len(diags) > 0 {
		t.Fatal(diags)
	}
	res := Validate(docs, Options{})
	model, err := reference.Load()
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`\(edgectl explain ([A-Za-z.]+)\)$`)
	want := map[string]string{"zzzzzzzz": "Firewall.spec.rules.behaviors", "qqqqqqqq": "Firewall.spec"}
	for _, d := range res.Diags {
		for field, path := range want {
			if !strings.Contains(d.Message, `unknown field "`+field+`"`) {
				continue
			}
			m := re.FindStringSubmatch(d.Message)
			if m == nil || m[1] != path {
				t.Errorf("%q: want the hint (edgectl explain %s)", d.Message, path)
				continue
			}
			if _, _, _, err := model.Lookup(m[1]); err != nil {
				t.Errorf("the hint's path does not resolve: %v", err)
			}
			delete(want, field)
		}
	}
	if len(want) > 0 {
		t.Errorf("no diagnostic for %v in %v", want, res.Diags)
	}
}

func TestExplainPath(t *testing.T) {
	for in, want := range map[string]string{
		"":                             "Domain",
		"spec":                         "Domain.spec",
		"spec.rules[0].behaviors[1]":   "Domain.spec.rules.behaviors",
		"spec.rules[0].criteria[0][1]": "Domain.spec.rules.criteria",
	} {
		if got := explainPath("Domain", in); got != want {
			t.Errorf("explainPath(%q) = %q, want %q", in, got, want)
		}
	}
}
