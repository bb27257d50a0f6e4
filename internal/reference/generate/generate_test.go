package generate

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"testing"

	"github.com/edgectl/edgectl/internal/reference"
	"github.com/edgectl/edgectl/pkg/manifest"
)

// TestGeneratedFilesAreFresh fails when a generated file differs from what
// the generator writes now, is missing, or is left over: run
// go generate ./... and commit the result.
func TestGeneratedFilesAreFresh(t *testing.T) {
	root, err := filepath.Abs("../../..")
	if err != nil {
		t.Fatal(err)
	}
	files, err := Files(root)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for rel := range files {
		names = append(names, rel)
	}
	sort.Strings(names)
	for _, rel := range names {
		got, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(rel)))
		if err != nil {
			t.Errorf("%s: %v (run go generate ./...)", rel, err)
			continue
		}
		if !bytes.Equal(got, files[rel]) {
			t.Errorf("%s is stale: run go generate ./... and commit the result", rel)
		}
	}
	for dir, pattern := range Outputs {
		on, _ := filepath.Glob(filepath.Join(root, dir, pattern))
		for _, p := range on {
			rel, _ := filepath.Rel(root, p)
			if _, ok := files[filepath.ToSlash(rel)]; !ok {
				t.Errorf("%s is no longer generated: run go generate ./... to remove it", rel)
			}
		}
	}
}

func TestDescribe(t *testing.T) {
	tests := map[string][2]string{
		"is":          {"Certificate", "Certificate is the PEM chain."},
		"are":         {"Items", "Items are IPv4 addresses."},
		"verb":        {"Rules", "Rules run in list order."},
		"of":          {"StatusCode", "StatusCode of the response, 200 to 499."},
		"initialism":  {"URL", "URL of the origin."},
		"other start": {"Deny", "Answers 403."},
	}
	want := map[string]string{
		"is":          "The PEM chain.",
		"are":         "IPv4 addresses.",
		"verb":        "Run in list order.",
		"of":          "Status code of the response, 200 to 499.",
		"initialism":  "URL of the origin.",
		"other start": "Answers 403.",
	}
	for name, in := range tests {
		if got := describe(in[0], in[1]); got != want[name] {
			t.Errorf("%s: describe(%q, %q) = %q, want %q", name, in[0], in[1], got, want[name])
		}
	}
}

// TestDefaultsMatchTheCode: a default written as a marker must be the
// value the code uses when the field is absent.
func TestDefaultsMatchTheCode(t *testing.T) {
	root, _ := filepath.Abs("../../..")
	files, err := Files(root)
	if err != nil {
		t.Fatal(err)
	}
	var m reference.Model
	if err := json.Unmarshal(files["internal/reference/model.json"], &m); err != nil {
		t.Fatal(err)
	}
	tests := map[string]string{
		"TrustedCA.spec.verifyDepth":              strconv.Itoa(manifest.DefaultVerifyDepth),
		"Application.spec.origin.hostHeader":      manifest.DefaultHostHeader,
		"Application.spec.origin.connectTimeout":  string(manifest.DefaultConnectTimeout),
		"Application.spec.origin.responseTimeout": string(manifest.DefaultResponseTimeout),
		"Application.spec.rules.phase":            manifest.PhaseRequest,
		"Domain.spec.mtls.verification":           manifest.VerificationEnforce,
	}
	for path, want := range tests {
		_, f, _, err := m.Lookup(path)
		if err != nil {
			t.Fatal(err)
		}
		if f.Default != want {
			t.Errorf("%s: default marker %q, but the code uses %q", path, f.Default, want)
		}
	}
}
