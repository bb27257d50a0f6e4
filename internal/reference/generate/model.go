package generate

import (
	"fmt"
	"strings"

	"github.com/edgectl/edgectl/internal/reference"
)

// kindModel converts a kind's nodes into the model explain answers from.
func kindModel(kind string, meta, spec *node, namePattern string) *reference.Field {
	root := &reference.Field{Name: kind, Type: "Object", Description: spec.typeDesc}
	root.Fields = []*reference.Field{
		{Name: "apiVersion", Type: "string", Required: true, Enum: []string{"edgectl.dev/v1"},
			Description: "The manifest API version; only edgectl.dev/v1 is understood."},
		{Name: "kind", Type: "string", Required: true, Enum: []string{kind}, Description: "The kind of resource."},
		fieldModel(withName(meta, "metadata", "Names the resource.", true), namePattern),
		fieldModel(withName(spec, "spec", spec.typeDesc, true), namePattern),
	}
	return root
}

func withName(n *node, name, desc string, required bool) *node {
	c := *n
	c.name, c.desc, c.required = name, desc, required
	return &c
}

func fieldModel(n *node, namePattern string) *reference.Field {
	f := &reference.Field{Name: n.name, Type: n.displayType(), Description: n.desc, Required: n.required, Example: n.example()}
	m := n.m
	if e, ok := m["enum"]; ok {
		f.Enum = strings.Split(e[0], ",")
	}
	f.Default, _ = m.get("default")
	f.Ref, _ = m.get("ref")
	f.SeeAlso, _ = m.get("seeAlso")
	if p, ok := m.get("phase"); ok {
		f.Phases = strings.Split(p, ",")
	}
	var cs []string
	if n.goType != nil && n.goType.Name() == "Duration" && n.typeDesc != "" {
		cs = append(cs, n.typeDesc)
	}
	if p, ok := m.get("pattern"); ok && f.Ref == "" {
		cs = append(cs, fmt.Sprintf("Matches the regular expression `%s`.", p))
	}
	if f.Ref != "" {
		cs = append(cs, fmt.Sprintf("The metadata.name of a %s defined in the manifests.", f.Ref))
	}
	if v, ok := m.get("maxLength"); ok {
		cs = append(cs, fmt.Sprintf("At most %s characters.", v))
	}
	lo, hasLo := m.get("minimum")
	hi, hasHi := m.get("maximum")
	switch {
	case hasLo && hasHi:
		cs = append(cs, fmt.Sprintf("From %s to %s.", lo, hi))
	case hasLo:
		cs = append(cs, fmt.Sprintf("At least %s.", lo))
	case hasHi:
		cs = append(cs, fmt.Sprintf("At most %s.", hi))
	}
	if v, ok := m.get("minItems"); ok {
		cs = append(cs, fmt.Sprintf("At least %s item%s.", v, plural(v)))
	}
	if m.has("uniqueItems") {
		cs = append(cs, "No duplicates.")
	}
	if n.shape == shMap {
		cs = append(cs, "A map of strings to strings.")
	}
	leaf := n.leaf()
	if leaf.shape == shObject {
		for _, o := range leaf.tm["oneOf"] {
			cs = append(cs, fmt.Sprintf("Exactly one of %s.", strings.ReplaceAll(o, ",", ", ")))
		}
		if leaf.tm.has("oneKey") {
			cs = append(cs, "Each item sets exactly one field; a field without an argument takes true.")
		}
		if n.shape == shArray && n.elem.shape == shArray {
			cs = append(cs, "A list of groups: the groups are ANDed, and inside a group and binds tighter than or.")
		}
		conds := map[string]string{}
		for _, r := range leaf.tm["requiredIf"] {
			field, cond, _ := strings.Cut(r, ":")
			other, value, _ := strings.Cut(cond, "=")
			conds[field] = fmt.Sprintf("Required when %s is %s.", other, value)
		}
		for _, r := range leaf.tm["forbiddenIf"] {
			field, cond, _ := strings.Cut(r, ":")
			other, values, _ := strings.Cut(cond, "=")
			conds[field] = fmt.Sprintf("Absent when %s is %s; required otherwise.", other, strings.ReplaceAll(values, ",", " or "))
		}
		for _, c := range leaf.fields {
			cf := fieldModel(c, namePattern)
			if s, ok := conds[c.name]; ok {
				cf.Constraints = append(cf.Constraints, s)
			}
			if leaf.tm.has("oneKey") && c.shape == shBoolean {
				cf.Constraints = append(cf.Constraints, "Takes true.")
			}
			f.Fields = append(f.Fields, cf)
		}
	}
	f.Constraints = append(cs, f.Constraints...)
	return f
}

func plural(n string) string {
	if n == "1" {
		return ""
	}
	return "s"
}
