package generate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
)

// obj is a JSON object that keeps its keys in insertion order.
type obj struct {
	keys []string
	vals map[string]any
}

func newObj(kv ...any) *obj {
	o := &obj{vals: map[string]any{}}
	for i := 0; i+1 < len(kv); i += 2 {
		o.set(kv[i].(string), kv[i+1])
	}
	return o
}

func (o *obj) set(k string, v any) *obj {
	if _, ok := o.vals[k]; !ok {
		o.keys = append(o.keys, k)
	}
	o.vals[k] = v
	return o
}

// MarshalJSON writes the keys in order, without HTML escaping.
func (o *obj) MarshalJSON() ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, k := range o.keys {
		if i > 0 {
			buf.WriteByte(',')
		}
		kb, err := marshal(k)
		if err != nil {
			return nil, err
		}
		vb, err := marshal(o.vals[k])
		if err != nil {
			return nil, err
		}
		buf.Write(kb)
		buf.WriteByte(':')
		buf.Write(vb)
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// encodeFile renders a schema file: indented, HTML characters kept, a final newline.
func encodeFile(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

const (
	schemaDraft = "http://json-schema.org/draft-07/schema#"
	baseURL     = "https://edgectl.dev/schemas/"
	generated   = "Generated from the Go types of pkg/manifest by go generate ./internal/reference; do not edit."
)

// schemaGen writes the schema of one kind file; definitions collects the
// list elements that become named definitions.
type schemaGen struct {
	file        string
	shared      map[reflect.Type]bool // types defined in common.json
	defs        *obj
	names       map[reflect.Type]string
	namePattern string
}

// defName is the definition name of a list element type: AppRule is rule,
// TestCase is case, Criterion is criterion.
func defName(t reflect.Type) string {
	n := t.Name()
	for _, p := range []string{"App", "Firewall", "Test"} {
		if r, ok := strings.CutPrefix(n, p); ok && r != "" {
			n = r
			break
		}
	}
	return lowerFirst(n)
}

// field returns the schema of a named field: its own description and type
// always sit next to each other, so an editor shows the field's text and
// completes "name: " with the right shape.
func (g *schemaGen) field(n *node) (*obj, error) {
	s := newObj("description", n.desc)
	return s, g.fill(s, n)
}

// fill adds n's type and constraints to s.
func (g *schemaGen) fill(s *obj, n *node) error {
	m := n.m
	if u, ok := m.get("type"); ok {
		s.set("type", strings.Split(u, ","))
		return nil
	}
	switch n.shape {
	case shString:
		s.set("type", "string")
		if e, ok := m["enum"]; ok {
			s.set("enum", strings.Split(e[0], ","))
		}
		if p, ok := m.get("pattern"); ok {
			s.set("pattern", p)
		}
		if kind, ok := m.get("ref"); ok {
			s.set("pattern", g.namePattern)
			_ = kind
		}
		if v, ok := m.get("minLength"); ok {
			if v != "0" {
				if err := setInt(s, "minLength", v); err != nil {
					return err
				}
			}
		} else if !m.has("enum") && !m.has("pattern") && !m.has("ref") {
			s.set("minLength", 1)
		}
		if v, ok := m.get("maxLength"); ok {
			if err := setInt(s, "maxLength", v); err != nil {
				return err
			}
		}
		if d, ok := m.get("default"); ok {
			s.set("default", d)
		}
	case shInteger:
		s.set("type", "integer")
		for _, k := range []string{"minimum", "maximum", "default"} {
			if v, ok := m.get(k); ok {
				if err := setInt(s, k, v); err != nil {
					return err
				}
			}
		}
	case shBoolean:
		s.set("type", "boolean")
		if d, ok := m.get("default"); ok {
			s.set("default", d == "true")
		}
	case shMap:
		s.set("type", "object")
		s.set("additionalProperties", newObj("type", "string"))
	case shArray:
		s.set("type", "array")
		if v, ok := m.get("minItems"); ok {
			if err := setInt(s, "minItems", v); err != nil {
				return err
			}
		} else if n.elem.shape == shArray {
			s.set("minItems", 1) // criteria: omit the field rather than write an empty list
		}
		if m.has("uniqueItems") {
			s.set("uniqueItems", true)
		}
		items, err := g.element(n.elem)
		if err != nil {
			return err
		}
		s.set("items", items)
	case shObject:
		return g.object(s, n)
	}
	return nil
}

// element returns the schema of a list element: a $ref for objects, an
// inline schema otherwise.
func (g *schemaGen) element(e *node) (*obj, error) {
	switch e.shape {
	case shObject:
		name := defName(e.goType)
		if g.shared[e.goType] && g.file != "common.json" {
			return newObj("$ref", "common.json#/definitions/"+name), nil
		}
		if _, done := g.names[e.goType]; !done {
			g.names[e.goType] = name
			d := newObj("description", e.typeDesc)
			if err := g.object(d, e); err != nil {
				return nil, err
			}
			g.defs.set(name, d)
		}
		return newObj("$ref", "#/definitions/"+name), nil
	case shArray:
		s := newObj("description", "A group of comparisons, joined by their conditionals; inside a group and binds tighter than or.")
		s.set("type", "array").set("minItems", 1)
		items, err := g.element(e.elem)
		if err != nil {
			return nil, err
		}
		s.set("items", items)
		return s, nil
	default:
		s := newObj()
		return s, g.fill(s, e)
	}
}

// object adds an object's properties and cross-field rules to s.
func (g *schemaGen) object(s *obj, n *node) error {
	s.set("type", "object")
	props := newObj()
	var required []string
	oneKey := n.tm.has("oneKey")
	for _, f := range n.fields {
		fs, err := g.field(f)
		if err != nil {
			return fmt.Errorf("%s: %w", f.name, err)
		}
		if oneKey && f.shape == shBoolean {
			fs.set("const", true)
		}
		props.set(f.name, fs)
		if f.required {
			required = append(required, f.name)
		}
	}
	s.set("properties", props)
	if len(required) > 0 {
		s.set("required", required)
	}
	s.set("additionalProperties", false)
	if oneKey {
		s.set("minProperties", 1).set("maxProperties", 1)
	}
	var allOf []any
	for _, o := range n.tm["oneOf"] {
		var alts []any
		for _, f := range strings.Split(o, ",") {
			alts = append(alts, newObj("required", []string{f}))
		}
		allOf = append(allOf, newObj("oneOf", alts))
	}
	for _, r := range n.tm["requiredIf"] {
		// field:other=value
		field, cond, _ := strings.Cut(r, ":")
		other, value, _ := strings.Cut(cond, "=")
		var v any = value
		if value == "true" || value == "false" {
			v = value == "true"
		}
		allOf = append(allOf, newObj(
			"if", newObj("properties", newObj(other, newObj("const", v)), "required", []string{other}),
			"then", newObj("required", []string{field})))
	}
	for _, r := range n.tm["forbiddenIf"] {
		// field:other=v1,v2: absent when other is one of the values, required otherwise.
		field, cond, _ := strings.Cut(r, ":")
		other, values, _ := strings.Cut(cond, "=")
		allOf = append(allOf, newObj(
			"if", newObj("properties", newObj(other, newObj("enum", strings.Split(values, ","))), "required", []string{other}),
			"then", newObj("properties", newObj(field, false)),
			"else", newObj("required", []string{field})))
	}
	if n.tm.has("behaviorsByPhase") {
		c, err := phaseRule(n)
		if err != nil {
			return err
		}
		allOf = append(allOf, c)
	}
	switch len(allOf) {
	case 0:
	case 1:
		for _, k := range allOf[0].(*obj).keys {
			s.set(k, allOf[0].(*obj).vals[k])
		}
	default:
		s.set("allOf", allOf)
	}
	return nil
}

// phaseRule restricts the behaviors of a rule to those of its phase, from
// the phase markers of the behavior fields.
func phaseRule(rule *node) (*obj, error) {
	var phase, behaviors *node
	for _, f := range rule.fields {
		switch f.name {
		case "phase":
			phase = f
		case "behaviors":
			behaviors = f
		}
	}
	if phase == nil || behaviors == nil || behaviors.shape != shArray {
		return nil, fmt.Errorf("generate: behaviorsByPhase needs phase and behaviors fields")
	}
	def, _ := phase.m.get("default")
	// The default phase lists its behaviors in field order; another phase
	// lists its own behaviors first, then those it shares.
	allowed := map[string][]string{}
	var shared []*node
	for _, b := range behaviors.elem.fields {
		ps, ok := b.m.get("phase")
		if !ok {
			return nil, fmt.Errorf("generate: behavior %s has no phase marker", b.name)
		}
		phases := strings.Split(ps, ",")
		if len(phases) > 1 {
			shared = append(shared, b)
		}
		for _, p := range phases {
			if p == def || len(phases) == 1 {
				allowed[p] = append(allowed[p], b.name)
			}
		}
	}
	for _, b := range shared {
		ps, _ := b.m.get("phase")
		for _, p := range strings.Split(ps, ",") {
			if p != def {
				allowed[p] = append(allowed[p], b.name)
			}
		}
	}
	names := func(p string) *obj {
		return newObj("properties", newObj("behaviors", newObj("items", newObj("propertyNames", newObj("enum", allowed[p])))))
	}
	var other string
	for _, p := range strings.Split(phase.m["enum"][0], ",") {
		if p != def {
			other = p
		}
	}
	return newObj(
		"if", newObj("properties", newObj("phase", newObj("const", other)), "required", []string{"phase"}),
		"then", names(other),
		"else", names(def)), nil
}

func setInt(s *obj, k, v string) error {
	i, err := strconv.Atoi(v)
	if err != nil {
		return fmt.Errorf("generate: marker %s=%s: %w", k, v, err)
	}
	s.set(k, i)
	return nil
}
