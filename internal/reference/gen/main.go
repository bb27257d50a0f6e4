// Command gen writes the generated files of the repository: the JSON
// Schemas in schemas/, the reference in docs/reference/ and the model of
// edgectl explain. Run it with go generate ./internal/reference (or
// go generate ./...).
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/edgectl/edgectl/internal/reference/generate"
)

func main() {
	root := flag.String("root", ".", "repository root")
	flag.Parse()
	if err := run(*root); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run(root string) error {
	files, err := generate.Files(root)
	if err != nil {
		return err
	}
	// Remove generated files that are no longer generated.
	for dir, pattern := range generate.Outputs {
		old, _ := filepath.Glob(filepath.Join(root, dir, pattern))
		for _, o := range old {
			rel, _ := filepath.Rel(root, o)
			if _, ok := files[filepath.ToSlash(rel)]; !ok && generate.Owned(filepath.ToSlash(rel)) {
				if err := os.Remove(o); err != nil {
					return err
				}
			}
		}
	}
	for rel, data := range files {
		p := filepath.Join(root, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return err
		}
	}
	return nil
}
