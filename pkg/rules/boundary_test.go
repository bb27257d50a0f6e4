package rules

import (
	"encoding/json"
	"errors"
	"os/exec"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const module = "github.com/edgectl/edgectl/"

// TestPackageBoundaries keeps the data flowing one way: the rules engine is
// pure (no sockets, no TLS, nothing of the packages that serve) and the
// origin client knows nothing of rules, runtimes or servers. It checks every
// package the non-test files pull in, directly or through others (go list
// -deps), and names the chain of imports that reaches a forbidden one.
func TestPackageBoundaries(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go command not found")
	}
	graph := listDeps(t, "./", "../proxy/")
	checks := []struct {
		pkg       string
		forbidden []string
	}{
		{module + "pkg/rules", []string{"net", "crypto/tls", "net/http", "pkg/proxy", "pkg/server", "pkg/edge", "pkg/edgetest", "pkg/cli"}},
		{module + "pkg/proxy", []string{"pkg/rules", "pkg/edge", "pkg/server", "pkg/edgetest", "pkg/cli"}},
	}
	for _, c := range checks {
		if _, ok := graph[c.pkg]; !ok {
			t.Fatalf("go list did not report %s", c.pkg)
		}
		for _, bad := range c.forbidden {
			for _, chain := range chainsTo(graph, c.pkg, bad) {
				t.Errorf("%s pulls in %s, which it must not: %s", c.pkg, chain[len(chain)-1], strings.Join(chain, " -> "))
			}
		}
	}
}

// chainsTo returns, for every package of the dependencies of from that is
// forbidden as bad, the shortest chain of imports from from to it.
func chainsTo(graph map[string][]string, from, bad string) [][]string {
	prev := map[string]string{from: ""}
	queue := []string{from}
	var found [][]string
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if p != from && forbidden(p, bad) {
			chain := []string{p}
			for q := prev[p]; q != ""; q = prev[q] {
				chain = append([]string{q}, chain...)
			}
			found = append(found, chain)
		}
		for _, imp := range graph[p] {
			if _, seen := prev[imp]; !seen {
				prev[imp] = p
				queue = append(queue, imp)
			}
		}
	}
	return found
}

func TestChainsTo(t *testing.T) {
	t.Parallel()
	graph := map[string][]string{
		"a":           {"b", "net/netip"},
		"b":           {"c", "crypto/x509"},
		"c":           {},
		"crypto/x509": {"net", "net/netip"},
		"net":         {"net/netip"},
	}
	got := chainsTo(graph, "a", "net")
	want := [][]string{{"a", "b", "crypto/x509", "net"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("chains to net (-want +got):\n%s", diff)
	}
	if got := chainsTo(graph, "a", "crypto/tls"); got != nil {
		t.Errorf("chains to crypto/tls: %v, want none", got)
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

// listDeps returns the import graph of the non-test files of the packages
// dirs and of everything they pull in: the direct imports of each package,
// by import path.
func listDeps(t *testing.T, dirs ...string) map[string][]string {
	t.Helper()
	out, err := exec.Command("go", append([]string{"list", "-deps", "-json=ImportPath,Imports"}, dirs...)...).Output()
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

// layers are the module's packages from the top (the command line) to the
// bottom: a package may import packages of its own layer or below, never
// above. A package below pkg/ or internal/ belongs to the layer of its
// nearest listed parent (pkg/server/h1 to pkg/server).
var layers = [][]string{
	{"pkg/cli"},
	{"pkg/edgetest", "pkg/server", "pkg/validate"},
	{"pkg/edge", "pkg/plan"},
	{"pkg/rules", "pkg/proxy", "pkg/state"},
	{"pkg/manifest"},
	{"pkg/pki", "pkg/diag", "schemas", "internal/markdown", "internal/headersafe", "internal/reference", "internal/nginxtest", "internal/gcfloor", "internal/httphead", "internal/rawio", "internal/tooltest", "internal/cancelctx", "internal/park"},
}

// unlayered are the packages outside the layering: programs and the
// generator, which may import anything and which no layered package may
// import.
var unlayered = []string{"cmd/", "bench/", "examples/", "internal/reference/gen", "internal/reference/generate"}

// isUnlayered reports whether the module-relative package path rel is a
// program or the generator.
func isUnlayered(rel string) bool {
	for _, u := range unlayered {
		u = strings.TrimSuffix(u, "/")
		if rel == u || strings.HasPrefix(rel, u+"/") {
			return true
		}
	}
	return false
}

// layerOf returns the layer of the module-relative package path rel (0 is
// the top), and false when rel is in no layer.
func layerOf(rel string) (int, bool) {
	if isUnlayered(rel) {
		return 0, false
	}
	best, layer := "", 0
	for i, l := range layers {
		for _, p := range l {
			if (rel == p || strings.HasPrefix(rel, p+"/")) && len(p) > len(best) {
				best, layer = p, i
			}
		}
	}
	return layer, best != ""
}

// TestLayering checks that every package of the module imports none in a
// layer above its own (cli → edgetest/server/validate → edge/plan →
// rules/proxy/state → manifest → pki/diag/schemas), that every package of
// pkg/ and internal/ has a layer, and that no layered package imports a
// program or the generator. Only the non-test files count: a test may
// reach further up (the e2e tests of pkg/edge run pkg/server).
func TestLayering(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go command not found")
	}
	graph := listDeps(t, "../../...")
	n := 0
	for imp, imports := range graph {
		rel, ok := strings.CutPrefix(imp, module)
		if !ok {
			continue
		}
		layer, layered := layerOf(rel)
		if !layered {
			if !isUnlayered(rel) {
				t.Errorf("%s has no layer: add it to layers in pkg/rules/boundary_test.go", rel)
			}
			continue
		}
		n++
		for _, dep := range imports {
			drel, ok := strings.CutPrefix(dep, module)
			if !ok {
				continue
			}
			dlayer, dlayered := layerOf(drel)
			switch {
			case !dlayered:
				t.Errorf("%s imports %s, a program or generator outside the layers", rel, drel)
			case dlayer < layer:
				t.Errorf("%s (layer %d) imports %s (layer %d), which is above it", rel, layer, drel, dlayer)
			}
		}
	}
	if n < 15 {
		t.Fatalf("go list reported only %d layered packages", n)
	}
}

func TestLayerOf(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		rel    string
		layer  int
		inside bool
	}{
		{"pkg/cli", 0, true},
		{"pkg/server/h1", 1, true},
		{"pkg/edge", 2, true},
		{"pkg/edgetest", 1, true},
		{"pkg/state/etcdtest", 3, true},
		{"pkg/pki/pkitest", 5, true},
		{"schemas", 5, true},
		{"internal/reference", 5, true},
		{"internal/reference/generate", 0, false},
		{"cmd/edgectl", 0, false},
		{"pkg/newthing", 0, false},
	} {
		layer, inside := layerOf(tc.rel)
		if layer != tc.layer || inside != tc.inside {
			t.Errorf("layerOf(%q) = %d, %v; want %d, %v", tc.rel, layer, inside, tc.layer, tc.inside)
		}
	}
}
