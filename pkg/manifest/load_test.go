package manifest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const domainDoc = `apiVersion: edgectl.dev/v1
kind: Domain
metadata:
  name: api
spec:
  hostnames: [api.example.com]
  certificate: cert
  application: app
`

func TestParse(t *testing.T) {
	type got struct {
		Kinds []string
		Names []string
		Diags []string
	}
	tests := map[string]struct {
		in   string
		want got
	}{
		"one document": {
			in:   domainDoc,
			want: got{Kinds: []string{"Domain"}, Names: []string{"api"}},
		},
		"several documents and empty ones": {
			in:   "---\n" + domainDoc + "---\n---\nkind: Certificate\nmetadata: {name: cert}\n...\n",
			want: got{Kinds: []string{"Domain", "Certificate"}, Names: []string{"api", "cert"}},
		},
		"syntax error keeps the other documents": {
			in:   domainDoc + "---\nkind: [\n---\nkind: Firewall\nmetadata: {name: fw}\n",
			want: got{Kinds: []string{"Domain", "Firewall"}, Names: []string{"api", "fw"}, Diags: []string{"f.yaml:10: error: invalid YAML: did not find expected node content"}},
		},
		"not a mapping": {
			in:   "- a\n- b\n",
			want: got{Diags: []string{"f.yaml:1:1: error: a manifest document must be a mapping with apiVersion, kind, metadata and spec"}},
		},
		"marker with content on its line": {
			in:   "--- {kind: Domain, metadata: {name: x}}\n",
			want: got{Kinds: []string{"Domain"}, Names: []string{"x"}},
		},
		"unknown kind keeps the envelope": {
			in:   "kind: Gadget\nmetadata: {name: g}\nspec: {}\n",
			want: got{Kinds: []string{"Gadget"}, Names: []string{"g"}},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			docs, diags := Parse("f.yaml", "/m", []byte(tc.in))
			var g got
			for _, d := range docs {
				g.Kinds = append(g.Kinds, d.Kind)
				g.Names = append(g.Names, d.Name())
			}
			for _, d := range diags {
				g.Diags = append(g.Diags, d.String())
			}
			if diff := cmp.Diff(tc.want, g); diff != "" {
				t.Errorf("Parse (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPositions(t *testing.T) {
	in := "# comment\n" + `apiVersion: edgectl.dev/v1
kind: Application
metadata: {name: app}
spec:
  origin: {url: "http://127.0.0.1:9000"}
  rules:
    - name: r
      behaviors:
        - deny: true
        - addRequestHeader: "A: b"
---
kind: Domain
spec:
  hostnames:
    - a.example.com
    - b.example.com
`
	docs, diags := Parse("f.yaml", "/m", []byte(in))
	if len(diags) > 0 {
		t.Fatal(diags)
	}
	tests := map[string]struct {
		doc  int
		path string
		want string
	}{
		"root":                  {0, "", "f.yaml:2:1"},
		"key":                   {0, "spec.origin", "f.yaml:6:3"},
		"flow mapping key":      {0, "spec.origin.url", "f.yaml:6:12"},
		"sequence item":         {0, "spec.rules[0].behaviors[1]", "f.yaml:11:11"},
		"key in sequence item":  {0, "spec.rules[0].behaviors[1].addRequestHeader", "f.yaml:11:11"},
		"missing field":         {0, "spec.rules[0].criteria", "f.yaml:8:7"},
		"index out of range":    {0, "spec.rules[3].name", "f.yaml:7:3"},
		"second document":       {1, "spec.hostnames[1]", "f.yaml:17:7"},
		"second document field": {1, "kind", "f.yaml:13:1"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := docs[tc.doc].Pos(tc.path).String(); got != tc.want {
				t.Errorf("Pos(%q) = %s, want %s", tc.path, got, tc.want)
			}
		})
	}
}

func TestTypedSpecs(t *testing.T) {
	in := `apiVersion: edgectl.dev/v1
kind: Firewall
metadata: {name: fw, labels: {team: edge}}
spec:
  rules:
    - name: deny
      criteria:
        - - {variable: host, operator: is_equal, argument: a.example.com}
          - {conditional: and, variable: client_certificate_validation, operator: is_not_equal, argument: true}
      behaviors:
        - setRateLimit: {type: second, limitBy: clientIp, averageRateLimit: 10}
`
	docs, _ := Parse("f.yaml", "/m", []byte(in))
	if len(docs) != 1 {
		t.Fatalf("got %d documents", len(docs))
	}
	arg := func(s string) *string { return &s }
	want := &FirewallSpec{Rules: []FirewallRule{{
		Name: "deny",
		Criteria: [][]Criterion{{
			{Variable: "host", Operator: "is_equal", Argument: arg("a.example.com")},
			{Conditional: "and", Variable: "client_certificate_validation", Operator: "is_not_equal", Argument: arg("true")},
		}},
		Behaviors: []FirewallBehavior{{SetRateLimit: &RateLimit{Type: "second", LimitBy: "clientIp", AverageRateLimit: 10}}},
	}}}
	if diff := cmp.Diff(want, docs[0].Spec); diff != "" {
		t.Errorf("spec (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(Metadata{Name: "fw", Labels: map[string]string{"team": "edge"}}, docs[0].Metadata); diff != "" {
		t.Errorf("metadata (-want +got):\n%s", diff)
	}
}

func TestLoadInputs(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"a.yaml":            domainDoc,
		"sub/b.yml":         "kind: Certificate\nmetadata: {name: c}\nspec: {certificateFile: c.pem}\n",
		"sub/notes.txt":     "not a manifest",
		".hidden/skip.yaml": "kind: Domain\nmetadata: {name: hidden}\n",
	})
	tests := map[string]struct {
		inputs []string
		stdin  string
		names  []string
		dirs   []string
		diags  []string
	}{
		"directory is walked recursively": {
			inputs: []string{dir},
			names:  []string{"api", "c"},
			dirs:   []string{dir, filepath.Join(dir, "sub")},
		},
		"file and stdin": {
			inputs: []string{filepath.Join(dir, "a.yaml"), "-"},
			stdin:  "kind: Firewall\nmetadata: {name: fw}\n",
			names:  []string{"api", "fw"},
		},
		"missing path": {
			inputs: []string{filepath.Join(dir, "nope.yaml")},
			diags:  []string{filepath.Join(dir, "nope.yaml") + ": error: no such file or directory"},
		},
		"a file reached twice is read once": {
			inputs: []string{dir, filepath.Join(dir, "a.yaml"), filepath.Join(dir, "sub", "..", "a.yaml")},
			names:  []string{"api", "c"},
		},
		"stdin twice": {
			inputs: []string{"-", "-"},
			diags:  []string{"<stdin>: error: standard input given twice with -f -"},
		},
		"hidden directory given explicitly": {
			inputs: []string{filepath.Join(dir, ".hidden", "..", "sub", "..", ".hidden")},
			names:  []string{"hidden"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			docs, diags := Load(tc.inputs, strings.NewReader(tc.stdin))
			var names, dirs, ds []string
			for _, d := range docs {
				names = append(names, d.Name())
				dirs = append(dirs, d.Dir)
			}
			for _, d := range diags {
				ds = append(ds, d.String())
			}
			if diff := cmp.Diff(tc.names, names); diff != "" {
				t.Errorf("names (-want +got):\n%s", diff)
			}
			if tc.dirs != nil {
				if diff := cmp.Diff(tc.dirs, dirs); diff != "" {
					t.Errorf("dirs (-want +got):\n%s", diff)
				}
			}
			if diff := cmp.Diff(tc.diags, ds); diff != "" {
				t.Errorf("diagnostics (-want +got):\n%s", diff)
			}
		})
	}
}

func TestResolve(t *testing.T) {
	d := &Document{Dir: "/repo/manifests"}
	for in, want := range map[string]string{
		"certs/a.pem":   "/repo/manifests/certs/a.pem",
		"../a.pem":      "/repo/a.pem",
		"/etc/edge.pem": "/etc/edge.pem",
		"":              "",
	} {
		if got := d.Resolve(in); got != want {
			t.Errorf("Resolve(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestValue(t *testing.T) {
	in := "a: 1\nb: 1.5\nc: true\nd: null\ne: 2024-01-01\nf: &x {g: [1, two]}\nh: *x\ni: {<<: *x, j: k}\n"
	docs, diags := Parse("f.yaml", "/m", []byte(in))
	if len(diags) > 0 {
		t.Fatal(diags)
	}
	want := map[string]any{
		"a": int64(1), "b": 1.5, "c": true, "d": nil, "e": "2024-01-01",
		"f": map[string]any{"g": []any{int64(1), "two"}},
		"h": map[string]any{"g": []any{int64(1), "two"}},
		"i": map[string]any{"g": []any{int64(1), "two"}, "j": "k"},
	}
	if diff := cmp.Diff(want, docs[0].Value()); diff != "" {
		t.Errorf("Value (-want +got):\n%s", diff)
	}
}

func FuzzLoad(f *testing.F) {
	f.Add([]byte(domainDoc))
	f.Add([]byte("---\n--- {a: b}\n...\nkind: [\n"))
	f.Add([]byte("a: &x [*x]\n"))
	f.Add([]byte("spec:\n  rules:\n    - behaviors: [{deny: true}]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		docs, _ := Parse("f.yaml", "/m", data)
		for _, d := range docs {
			_ = d.Value()
			_ = d.Pos("spec.rules[0].behaviors[0].deny")
		}
	})
}

// TestPortable checks that a relative reference is stored relative to the
// manifest root: the -f directory, or the file's own directory when the file
// is given, whatever the checkout's absolute path.
func TestPortable(t *testing.T) {
	for _, checkout := range []string{"runner", "laptop/deep/er"} {
		dir := writeFiles(t, map[string]string{
			checkout + "/m/a.yaml":     domainDoc,
			checkout + "/m/sub/b.yaml": domainDoc,
		})
		base := filepath.Join(dir, checkout)
		got := map[string]string{}
		docs, diags := Load([]string{filepath.Join(base, "m")}, nil)
		if len(diags) > 0 {
			t.Fatal(diags)
		}
		for _, d := range docs {
			got["dir "+filepath.Base(d.File)] = d.Portable("../key.pem")
		}
		docs, _ = Load([]string{filepath.Join(base, "m", "sub", "b.yaml")}, nil)
		got["file b.yaml"] = docs[0].Portable("key.pem")
		got["absolute"] = docs[0].Portable("/etc/edge/key.pem")
		want := map[string]string{
			"dir a.yaml":  "../key.pem",
			"dir b.yaml":  "key.pem", // m/sub/../key.pem is m/key.pem
			"file b.yaml": "key.pem",
			"absolute":    "/etc/edge/key.pem",
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("checkout %s (-want +got):\n%s", checkout, diff)
		}
	}
}
