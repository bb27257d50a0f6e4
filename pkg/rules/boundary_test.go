package rules

import (
	"encoding/json"
	"errors"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/edgectl/edgectl/"

// TestPackageBoundaries keeps the data flowing one way: the rules engine is
// pure (no sockets, no TLS, nothing of the packages that serve) and the
// origin client knows nothing of rules, runtimes or servers. It reads the
// imports of the packages' non-test files with go list.
func TestPackageBoundaries(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go command not found")
	}
	imports := listImports(t, "./", "../proxy/")
	serving := []string{"pkg/proxy", "pkg/server", "pkg/edge", "pkg/edgetest", "pkg/cli"}
	checks := []struct {
		pkg       string
		forbidden []string
	}{
		{module + "pkg/rules", append([]string{"net", "crypto/tls"}, serving...)},
		{module + "pkg/proxy", []string{"pkg/rules", "pkg/edge", "pkg/server", "pkg/edgetest", "pkg/cli"}},
	}
	for _, c := range checks {
		got, ok := imports[c.pkg]
		if !ok {
			t.Fatalf("go list did not report %s", c.pkg)
		}
		for _, imp := range got {
			for _, bad := range c.forbidden {
				if forbidden(imp, bad) {
					t.Errorf("%s imports %s, which it must not (%s)", c.pkg, imp, bad)
				}
			}
		}
	}
}

// forbidden reports whether the import path imp is the forbidden package
// bad (a standard library path) or, for a path under pkg/, that package of
// this module or one below it.
func forbidden(imp, bad string) bool {
	if strings.HasPrefix(bad, "pkg/") {
		p := module + bad
		return imp == p || strings.HasPrefix(imp, p+"/")
	}
	return imp == bad
}

func TestForbidden(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		imp, bad string
		want     bool
	}{
		{"net", "net", true},
		{"net/netip", "net", false},
		{"net/http", "net", false},
		{"crypto/tls", "crypto/tls", true},
		{module + "pkg/server/h1", "pkg/server", true},
		{module + "pkg/serverless", "pkg/server", false},
		{module + "pkg/edge", "pkg/edge", true},
		{module + "pkg/edgetest", "pkg/edge", false},
	} {
		if got := forbidden(tc.imp, tc.bad); got != tc.want {
			t.Errorf("forbidden(%q, %q) = %v, want %v", tc.imp, tc.bad, got, tc.want)
		}
	}
}

// listImports returns the direct imports of the non-test files of the
// packages dirs, by import path.
func listImports(t *testing.T, dirs ...string) map[string][]string {
	t.Helper()
	out, err := exec.Command("go", append([]string{"list", "-json=ImportPath,Imports"}, dirs...)...).Output()
	if err != nil {
		if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
			t.Fatalf("go list: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	m := map[string][]string{}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for dec.More() {
		var p struct {
			ImportPath string
			Imports    []string
		}
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		m[p.ImportPath] = p.Imports
	}
	return m
}
