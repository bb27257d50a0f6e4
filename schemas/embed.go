// Package schemas embeds the JSON Schemas of edgectl manifests; editors load the same files.
//
// There is one draft-07 schema per kind (certificate.json, trustedca.json,
// networklist.json, application.json, firewall.json, domain.json,
// testsuite.json), definitions they share (common.json) and a top-level
// schema (edgectl.json) that accepts any manifest document and dispatches on
// its kind. Every file has the $id https://edgectl.dev/schemas/<file> and
// refers to the others by relative $ref, so the files work the same whether
// an editor loads them from that URL or from a local checkout.
package schemas

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"path"

	"github.com/santhosh-tekuri/jsonschema/v5"
)

// FS holds every schema file, named as in this directory.
//
//go:embed *.json
var FS embed.FS

// BaseURL is the URL that every schema $id is relative to.
const BaseURL = "https://edgectl.dev/schemas/"

// TopLevelID is the $id of the schema that validates any manifest document.
const TopLevelID = BaseURL + "edgectl.json"

// kindFiles maps each kind to the file of its document schema.
var kindFiles = map[string]string{
	"Certificate": "certificate.json",
	"TrustedCA":   "trustedca.json",
	"NetworkList": "networklist.json",
	"Application": "application.json",
	"Firewall":    "firewall.json",
	"Domain":      "domain.json",
	"TestSuite":   "testsuite.json",
}

// KindID returns the $id of the document schema of kind, or "" if kind is
// not a manifest kind.
func KindID(kind string) string {
	f, ok := kindFiles[kind]
	if !ok {
		return ""
	}
	return BaseURL + f
}

// Compile compiles the top-level schema, which validates one manifest
// document of any kind. Validation errors are *jsonschema.ValidationError
// values whose InstanceLocation is a JSON pointer into the document.
// Compile touches no network; callers should compile once and reuse the
// result, which is safe for concurrent use.
func Compile() (*jsonschema.Schema, error) {
	return compile(TopLevelID)
}

// Kind compiles the document schema of one kind, such as "Domain".
func Kind(kind string) (*jsonschema.Schema, error) {
	id := KindID(kind)
	if id == "" {
		return nil, fmt.Errorf("schemas: unknown kind %q", kind)
	}
	return compile(id)
}

// compile loads every embedded file into a draft-07 compiler under its $id
// and compiles the schema with the given id.
func compile(id string) (*jsonschema.Schema, error) {
	c, err := newCompiler()
	if err != nil {
		return nil, err
	}
	s, err := c.Compile(id)
	if err != nil {
		return nil, fmt.Errorf("schemas: compile %s: %w", id, err)
	}
	return s, nil
}

// newCompiler returns a compiler that knows every embedded schema and
// refuses to load anything else.
func newCompiler() (*jsonschema.Compiler, error) {
	c := jsonschema.NewCompiler()
	c.Draft = jsonschema.Draft7
	c.ExtractAnnotations = true
	c.LoadURL = func(u string) (io.ReadCloser, error) {
		return nil, fmt.Errorf("schemas: %s is not an embedded schema", u)
	}
	names, err := fs.Glob(FS, "*.json")
	if err != nil {
		return nil, fmt.Errorf("schemas: %w", err)
	}
	for _, name := range names {
		b, err := FS.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("schemas: %w", err)
		}
		var head struct {
			ID string `json:"$id"`
		}
		if err := json.Unmarshal(b, &head); err != nil {
			return nil, fmt.Errorf("schemas: %s: %w", name, err)
		}
		if head.ID != BaseURL+path.Base(name) {
			return nil, fmt.Errorf("schemas: %s: $id is %q, want %q", name, head.ID, BaseURL+path.Base(name))
		}
		if err := c.AddResource(head.ID, bytes.NewReader(b)); err != nil {
			return nil, fmt.Errorf("schemas: %s: %w", name, err)
		}
	}
	return c, nil
}
