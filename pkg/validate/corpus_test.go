package validate_test

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/edgectl/edgectl/pkg/manifest"
	"github.com/edgectl/edgectl/pkg/validate"
)

var update = flag.Bool("update", os.Getenv("EDGECTL_UPDATE") != "", "rewrite golden files")

// run loads and validates inputs, and returns the diagnostics as printed,
// relative to dir.
func run(t *testing.T, dir string, inputs ...string) (*validate.Result, string) {
	t.Helper()
	docs, diags := manifest.Load(inputs, nil)
	res := validate.Validate(docs, validate.Options{LookupEnv: func(string) (string, bool) { return "", false }})
	diags = append(diags, res.Diags...)
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, d := range diags.Normalized(abs, false) {
		b.WriteString(d.String() + "\n")
	}
	return res, b.String()
}

// TestInvalidCorpus checks the diagnostics of every manifest under
// testdata/invalid against its golden file.
func TestInvalidCorpus(t *testing.T) {
	dir := filepath.Join("..", "..", "testdata", "invalid")
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no corpus in %s: %v", dir, err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".yaml")
		t.Run(name, func(t *testing.T) {
			abs, _ := filepath.Abs(f)
			_, got := run(t, dir, abs)
			golden := strings.TrimSuffix(f, ".yaml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with EDGECTL_UPDATE=1 to create it)", err)
			}
			if diff := cmp.Diff(string(want), got); diff != "" {
				t.Errorf("diagnostics of %s (-want +got):\n%s", filepath.Base(f), diff)
			}
			if !strings.Contains(got, "error:") && !strings.Contains(got, "warning:") {
				t.Errorf("%s: an invalid-corpus file must produce at least one diagnostic", filepath.Base(f))
			}
		})
	}
}

// TestFiveMistakes is the newcomer's check from the foundation issue: five
// different mistakes in one file give five positioned errors in one run.
func TestFiveMistakes(t *testing.T) {
	_, got := run(t, filepath.Join("..", "..", "testdata", "invalid"), filepath.Join("..", "..", "testdata", "invalid", "five-mistakes.yaml"))
	lines := strings.Split(strings.TrimSpace(got), "\n")
	if len(lines) != 5 {
		t.Fatalf("want 5 diagnostics, got %d:\n%s", len(lines), got)
	}
	for _, l := range lines {
		var line, col int
		if n, _ := fmtSscanf(l, &line, &col); n != 2 || line == 0 || col == 0 {
			t.Errorf("diagnostic without a line and column: %s", l)
		}
	}
}

// TestExamplesValidate checks that every example is valid without warnings.
func TestExamplesValidate(t *testing.T) {
	dirs, _ := filepath.Glob(filepath.Join("..", "..", "examples", "*"))
	n := 0
	for _, d := range dirs {
		if fi, err := os.Stat(d); err != nil || !fi.IsDir() {
			continue
		}
		if m, _ := filepath.Glob(filepath.Join(d, "*.yaml")); len(m) == 0 {
			continue
		}
		n++
		t.Run(filepath.Base(d), func(t *testing.T) {
			res, got := run(t, d, d)
			if got != "" {
				t.Errorf("example %s is not clean:\n%s", d, got)
			}
			if len(res.Resources) == 0 {
				t.Errorf("example %s has no resources", d)
			}
		})
	}
	if n == 0 {
		t.Fatal("no example found")
	}
}
