package reference

import (
	"errors"
	"strings"
	"testing"

	"github.com/edgectl/edgectl/pkg/manifest"
)

func TestModelCoversEveryKindAndField(t *testing.T) {
	m, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(m.KindNames(), ","), strings.Join(manifest.Kinds, ","); got != want {
		t.Errorf("kinds %s, want %s", got, want)
	}
	var walk func(path string, f *Field)
	walk = func(path string, f *Field) {
		if strings.TrimSpace(f.Description) == "" {
			t.Errorf("%s: no description", path)
		}
		if f.Type == "" {
			t.Errorf("%s: no type", path)
		}
		for _, c := range f.Fields {
			walk(path+"."+c.Name, c)
		}
	}
	for _, k := range m.Kinds {
		walk(k.Name, k)
	}
}

func TestLookup(t *testing.T) {
	m, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		path, want, wantErr string
	}{
		"kind":           {path: "Domain", want: "Domain"},
		"kind any case":  {path: "trustedca.spec.verifyDepth", want: "TrustedCA.spec.verifyDepth"},
		"field any case": {path: "Domain.spec.MTLS.trustedca", want: "Domain.spec.mtls.trustedCA"},
		"list field":     {path: "Application.spec.rules.behaviors.addRequestHeader", want: "Application.spec.rules.behaviors.addRequestHeader"},
		"list suffix":    {path: "Firewall.spec.rules[].criteria[].operator", want: "Firewall.spec.rules.criteria.operator"},
		"unknown kind":   {path: "Domian", wantErr: `unknown kind "Domian"; did you mean "Domain"?`},
		"unknown field":  {path: "Application.spec.orign.url", wantErr: `unknown field "orign" in Application.spec; did you mean "Application.spec.origin"?`},
		"below a leaf":   {path: "Domain.spec.hostnames.x", wantErr: `unknown field "x" in Domain.spec.hostnames`},
		"nothing close":  {path: "Domain.spec.qqqqqqqqqq", wantErr: `(fields of Domain.spec: hostnames, certificate, application, firewall, mtls)`},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			_, f, canonical, err := m.Lookup(tt.path)
			if tt.wantErr != "" {
				var le *LookupError
				if !errors.As(err, &le) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Lookup(%q) error = %v, want %q", tt.path, err, tt.wantErr)
				}
				return
			}
			if err != nil || f == nil || canonical != tt.want {
				t.Fatalf("Lookup(%q) = %q, %v; want %q", tt.path, canonical, err, tt.want)
			}
		})
	}
}

func TestClosest(t *testing.T) {
	c := []string{"hostnames", "certificate", "application", "firewall", "mtls"}
	for in, want := range map[string]string{"certficate": "certificate", "MTLS": "mtls", "hostname": "hostnames", "zzzzzz": ""} {
		if got := Closest(in, c); got != want {
			t.Errorf("Closest(%q) = %q, want %q", in, got, want)
		}
	}
}
