package validate_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/edgectl/edgectl/pkg/manifest"
	"github.com/edgectl/edgectl/pkg/validate"
)

// FuzzValidate feeds arbitrary manifests through loading and every check:
// no input may panic, and every diagnostic names its file.
func FuzzValidate(f *testing.F) {
	for _, dir := range []string{"../../examples/open-banking", "../../testdata/invalid"} {
		files, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
		for _, file := range files {
			if data, err := os.ReadFile(file); err == nil {
				f.Add(data)
			}
		}
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		docs, diags := manifest.Parse(filepath.Join(dir, "m.yaml"), dir, data)
		res := validate.Validate(docs, validate.Options{LookupEnv: func(string) (string, bool) { return "", false }})
		for _, d := range append(diags, res.Diags...) {
			if d.File == "" || d.Message == "" {
				t.Fatalf("diagnostic without a file or message: %+v", d)
			}
		}
		if !res.Diags.HasErrors() && len(diags) == 0 {
			_ = res.Desired()
		}
	})
}
