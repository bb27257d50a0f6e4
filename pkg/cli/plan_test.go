package cli_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestCIExamples checks that the CI workflows a user copies are YAML and
// use the plan and apply verbs as documented.
func TestCIExamples(t *testing.T) {
	want := map[string][]string{
		"pull-request.yml": {"edgectl validate", "-o markdown --detailed-exitcode", `2) echo "changes=true"`},
		"merge.yml":        {"edgectl validate", "--out plan.json", "edgectl apply plan.json", "EDGECTL_STATE:"},
	}
	for name, needles := range want {
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("..", "..", "examples", "ci", name))
			if err != nil {
				t.Fatal(err)
			}
			var doc map[string]any
			if err := yaml.Unmarshal(data, &doc); err != nil {
				t.Fatalf("not YAML: %v", err)
			}
			if _, ok := doc["jobs"]; !ok {
				t.Error("no jobs")
			}
			for _, n := range needles {
				if !strings.Contains(string(data), n) {
					t.Errorf("does not contain %q", n)
				}
			}
		})
	}
}
