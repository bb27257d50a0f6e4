package generate

import (
	"bytes"
	"os"
	"path/filepath"
	"sort"
	"testing"
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
