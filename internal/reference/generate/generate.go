package generate

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"

	"github.com/edgectl/edgectl/internal/reference"
	"github.com/edgectl/edgectl/pkg/manifest"
	"github.com/edgectl/edgectl/pkg/rules"
)

// Outputs are the directories, relative to the repository root, whose
// generated files Files returns. A file there that Files does not return is
// stale too.
var Outputs = map[string]string{
	"schemas":            "*.json",
	"docs/reference":     "*.md",
	"internal/reference": "model.json",
	"docs/cli":           "*.md",
	"docs/cli/man":       "*.1",
}

// Files generates every output from the repository at root and returns
// them by path relative to root.
func Files(root string) (map[string][]byte, error) {
	docs, err := readSource(filepath.Join(root, "pkg", "manifest"))
	if err != nil {
		return nil, err
	}
	b := &builder{docs: docs, pkgPath: reflect.TypeOf(manifest.Metadata{}).PkgPath()}
	ks, err := kinds()
	if err != nil {
		return nil, err
	}
	meta, err := b.object(reflect.TypeOf(manifest.Metadata{}))
	if err != nil {
		return nil, err
	}
	namePattern, _ := meta.fields[0].m.get("pattern")
	specs := map[string]*node{}
	uses := map[reflect.Type]map[string]bool{}
	for _, k := range ks {
		n, err := b.object(k.spec)
		if err != nil {
			return nil, err
		}
		specs[k.kind] = n
		walk(n, func(e *node) {
			if e.shape == shObject {
				if uses[e.goType] == nil {
					uses[e.goType] = map[string]bool{}
				}
				uses[e.goType][k.kind] = true
			}
		})
	}
	shared := map[reflect.Type]bool{}
	for t, in := range uses {
		if len(in) > 1 && t != reflect.TypeOf(manifest.Metadata{}) {
			shared[t] = true
		}
	}

	out := map[string][]byte{}
	// common.json: the list elements several kinds share.
	common := &schemaGen{file: "common.json", shared: shared, defs: newObj(), names: map[reflect.Type]string{}, namePattern: namePattern}
	for _, k := range ks {
		walk(specs[k.kind], func(e *node) {
			if e.shape == shArray && shared[e.leaf().goType] {
				if _, err2 := common.element(e.leaf()); err2 != nil && err == nil {
					err = err2
				}
			}
		})
	}
	if err != nil {
		return nil, err
	}
	if out["schemas/common.json"], err = encodeFile(newObj(
		"$schema", schemaDraft, "$id", baseURL+"common.json", "$comment", generated,
		"title", "edgectl common definitions",
		"description", "Definitions shared by the schemas of several edgectl manifest kinds.",
		"definitions", common.defs)); err != nil {
		return nil, err
	}

	for _, k := range ks {
		g := &schemaGen{file: kindFile(k.kind), shared: shared, defs: newObj(), names: map[reflect.Type]string{}, namePattern: namePattern}
		spec := specs[k.kind]
		specSchema := newObj("description", spec.typeDesc)
		if err := g.object(specSchema, spec); err != nil {
			return nil, fmt.Errorf("%s: %w", k.kind, err)
		}
		metaSchema := newObj("description", "Names the resource.")
		if err := g.object(metaSchema, meta); err != nil {
			return nil, err
		}
		doc := newObj(
			"$schema", schemaDraft, "$id", baseURL+kindFile(k.kind), "$comment", generated,
			"title", k.kind,
			"description", fmt.Sprintf("An edgectl %s manifest. %s", k.kind, spec.typeDesc),
			"type", "object",
			"properties", newObj(
				"apiVersion", apiVersionSchema(),
				"kind", newObj("description", "The kind of resource.", "type", "string", "const", k.kind),
				"metadata", metaSchema,
				"spec", specSchema),
			"required", []string{"apiVersion", "kind", "metadata", "spec"},
			"additionalProperties", false)
		if len(g.defs.keys) > 0 {
			doc.set("definitions", g.defs)
		}
		if out["schemas/"+kindFile(k.kind)], err = encodeFile(doc); err != nil {
			return nil, err
		}
	}
	if out["schemas/edgectl.json"], err = encodeFile(topLevel(ks)); err != nil {
		return nil, err
	}

	model := &reference.Model{APIVersion: manifest.APIVersion}
	for _, k := range ks {
		model.Kinds = append(model.Kinds, kindModel(k.kind, meta, specs[k.kind], namePattern))
	}
	for _, v := range rules.VariableDocs {
		model.Variables = append(model.Variables, reference.Variable{Name: v.Name, Engine: v.Engine, Phases: v.Phases,
			Format: v.Format, Example: v.Example, Origin: v.Origin})
	}
	for _, o := range rules.OperatorDocs {
		model.Operators = append(model.Operators, reference.Operator{Name: o.Name, Argument: o.Argument, Description: o.Description})
	}
	mj, err := json.MarshalIndent(model, "", "  ")
	if err != nil {
		return nil, err
	}
	out["internal/reference/model.json"] = append(mj, '\n')
	out["docs/reference/manifests.md"] = manifestsMarkdown(model)
	out["docs/reference/rules.md"] = rulesMarkdown(model)
	if err := cliFiles(out); err != nil {
		return nil, err
	}
	return out, nil
}

func kindFile(kind string) string { return strings.ToLower(kind) + ".json" }

func apiVersionSchema() *obj {
	return newObj("description", "The manifest API version; only "+manifest.APIVersion+" is understood.",
		"type", "string", "const", manifest.APIVersion)
}

func topLevel(ks []kindSpec) *obj {
	var names []string
	var branches []any
	for _, k := range ks {
		names = append(names, k.kind)
		branches = append(branches, newObj(
			"if", newObj("properties", newObj("kind", newObj("const", k.kind)), "required", []string{"kind"}),
			"then", newObj("$ref", kindFile(k.kind))))
	}
	return newObj(
		"$schema", schemaDraft, "$id", baseURL+"edgectl.json", "$comment", generated,
		"title", "edgectl manifest",
		"description", "One edgectl manifest document; kind selects the schema of the rest.",
		"type", "object",
		"properties", newObj(
			"apiVersion", apiVersionSchema(),
			"kind", newObj("description", "The kind of resource: "+strings.Join(names[:len(names)-1], ", ")+" or "+names[len(names)-1]+".",
				"type", "string", "enum", names),
			"metadata", newObj("description", "Names the resource.", "type", "object"),
			"spec", newObj("description", "The desired state of the resource; its fields depend on kind.", "type", "object")),
		"required", []string{"kind"},
		"additionalProperties", false,
		"allOf", branches)
}

// walk calls fn for n and every node below it.
func walk(n *node, fn func(*node)) {
	fn(n)
	for _, f := range n.fields {
		walk(f, fn)
	}
	if n.elem != nil {
		walk(n.elem, fn)
	}
}

// Owned reports whether the file at rel (relative to the root, with
// slashes) is one the generator owns: every file matching Outputs.
func Owned(rel string) bool {
	for dir, pattern := range Outputs {
		if ok, _ := filepath.Match(dir+"/"+pattern, rel); ok {
			return true
		}
	}
	return false
}
