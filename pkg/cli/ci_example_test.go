package cli_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/edgectl/edgectl/pkg/cli"
)

// TestCIComments keeps the pull-request comments shown in examples/ci (a
// valid plan and an invalid one) what edgectl plan -o markdown prints for
// the open-banking example, deployed then edited, or edited with mistakes.
// EDGECTL_UPDATE=1 rewrites them.
func TestCIComments(t *testing.T) {
	examples, err := filepath.Abs("../../examples")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		file  string
		code  int
		edits map[string][][2]string
	}{{
		file: "comment-valid.md",
		code: cli.ExitChanges,
		edits: map[string][][2]string{
			"application.yaml": {{`"Edge: edgectl"`, `"Edge: edgectl-eu-1"`}},
			"networks.yaml":    {{"    - 192.0.2.0/24\n", "    - 192.0.2.0/24\n    - 198.51.100.0/24\n"}},
		},
	}, {
		file: "comment-invalid.md",
		code: cli.ExitError,
		edits: map[string][][2]string{
			"domains.yaml":  {{"  certificate: bank-edge\n  application: banking-api\n  firewall: portal-firewall", "  certificate: bank-edg\n  application: banking-api\n  firewall: portal-firewall"}},
			"networks.yaml": {{"192.0.2.0/24", "192.0.2.0/33"}},
		},
	}} {
		t.Run(tc.file, func(t *testing.T) {
			dir := t.TempDir()
			copyDir(t, filepath.Join(examples, "open-banking"), filepath.Join(dir, "manifests"))
			t.Chdir(dir)
			run := func(args ...string) (int, string, string) {
				var out, errOut bytes.Buffer
				code := cli.Run(context.Background(), args, &cli.IO{In: strings.NewReader(""), Out: &out, ErrOut: &errOut, Getenv: func(string) string { return "" }})
				return code, out.String(), errOut.String()
			}
			if code, out, errOut := run("apply", "-f", "manifests", "--state", "state.json"); code != 0 {
				t.Fatalf("apply: exit %d\n%s%s", code, out, errOut)
			}
			// A fixed lineage, so that the comment does not change with every run.
			data, err := os.ReadFile("state.json")
			if err != nil {
				t.Fatal(err)
			}
			data = regexp.MustCompile(`"lineage": "[^"]+"`).ReplaceAll(data, []byte(`"lineage": "0e5b6a1c-8d2f-4c6e-9a41-3f7b2d9c1e07"`))
			if err := os.WriteFile("state.json", data, 0o644); err != nil {
				t.Fatal(err)
			}
			for file, edits := range tc.edits {
				path := filepath.Join("manifests", file)
				data, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				for _, e := range edits {
					if !bytes.Contains(data, []byte(e[0])) {
						t.Fatalf("%s holds no %q", file, e[0])
					}
					data = bytes.Replace(data, []byte(e[0]), []byte(e[1]), 1)
				}
				if err := os.WriteFile(path, data, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			code, got, errOut := run("plan", "-f", "manifests/", "--state", "state.json", "-o", "markdown", "--detailed-exitcode")
			if code != tc.code {
				t.Fatalf("plan: exit %d, want %d\n%s%s", code, tc.code, got, errOut)
			}
			golden := filepath.Join(examples, "ci", tc.file)
			if os.Getenv("EDGECTL_UPDATE") == "1" {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (EDGECTL_UPDATE=1 writes it)", err)
			}
			if diff := cmp.Diff(string(want), got); diff != "" {
				t.Errorf("%s differs (-want +got; EDGECTL_UPDATE=1 rewrites it):\n%s", golden, diff)
			}
		})
	}
}

// copyDir copies the manifests and certificates of an example (not its Go
// programs) from src to dst.
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			if d.Name() == "origin" {
				return filepath.SkipDir
			}
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		if filepath.Ext(p) == ".go" {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}
