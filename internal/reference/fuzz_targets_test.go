package reference

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

var (
	fuzzFunc    = regexp.MustCompile(`(?m)^func (Fuzz\w+)\(`)
	fuzzTargets = regexp.MustCompile(`(?m)^FUZZ_TARGETS\s*:=\s*(.+)$`)
)

// TestMakeFuzzListsEveryTarget: `make fuzz` runs every fuzz target of the
// repository, each in the package that defines it (their seed corpora run in
// make test either way; make fuzz is where they search).
func TestMakeFuzzListsEveryTarget(t *testing.T) {
	root := repoRoot(t)
	mk, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	m := fuzzTargets.FindSubmatch(mk)
	if m == nil {
		t.Fatal("the Makefile has no FUZZ_TARGETS line")
	}
	var listed []string
	for _, f := range strings.Fields(string(m[1])) {
		name, dir, ok := strings.Cut(f, ":")
		if !ok {
			t.Fatalf("FUZZ_TARGETS entry %q is not NAME:./pkg/dir/", f)
		}
		listed = append(listed, name+" "+filepath.Clean(dir))
	}
	var defined []string
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case ".git", "node_modules", "bin", "bench", "testdata":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, filepath.Dir(p))
		if err != nil {
			return err
		}
		for _, f := range fuzzFunc.FindAllSubmatch(src, -1) {
			defined = append(defined, string(f[1])+" "+rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(defined) == 0 {
		t.Fatal("found no fuzz target in the repository")
	}
	slices.Sort(listed)
	slices.Sort(defined)
	if !slices.Equal(listed, defined) {
		t.Errorf("FUZZ_TARGETS in the Makefile does not list the repository's fuzz targets\nlisted:  %q\ndefined: %q", listed, defined)
	}
}
