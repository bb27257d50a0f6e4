package generate

import (
	"fmt"
	"reflect"
	"strings"

	"github.com/edgectl/edgectl/pkg/manifest"
)

// shape is the JSON shape of a node.
type shape int

const (
	shString shape = iota
	shInteger
	shBoolean
	shObject // a struct
	shArray
	shMap // map[string]string
)

// node is one field (or list element) of the manifest language with
// everything the source says about it.
type node struct {
	name     string // YAML name; "" for a list element
	goType   reflect.Type
	shape    shape
	desc     string
	required bool
	m        markers // the field's markers, then its named type's
	tm       markers // the struct type's markers (objects)
	typeDesc string  // the struct type's description (objects)
	fields   []*node // objects
	elem     *node   // arrays
}

// kindSpec pairs a kind with its spec type.
type kindSpec struct {
	kind string
	spec reflect.Type
}

// kinds lists every kind with its spec type, in manifest.Kinds order.
func kinds() ([]kindSpec, error) {
	var out []kindSpec
	for _, k := range manifest.Kinds {
		s := manifest.NewSpec(k)
		if s == nil {
			return nil, fmt.Errorf("generate: kind %s has no spec type", k)
		}
		out = append(out, kindSpec{k, reflect.TypeOf(s).Elem()})
	}
	return out, nil
}

type builder struct {
	docs map[string]*typeDoc
	// pkgPath is the import path whose named types the docs describe.
	pkgPath string
}

// object builds the node of a struct type.
func (b *builder) object(t reflect.Type) (*node, error) {
	td := b.docs[t.Name()]
	if td == nil {
		return nil, fmt.Errorf("generate: no source for type %s", t.Name())
	}
	n := &node{goType: t, shape: shObject, tm: td.markers, typeDesc: describe(t.Name(), td.text)}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			return nil, fmt.Errorf("generate: %s.%s has no yaml name", t.Name(), f.Name)
		}
		fd, ok := td.fields[f.Name]
		if !ok || fd.text == "" {
			return nil, fmt.Errorf("generate: %s.%s has no doc comment", t.Name(), f.Name)
		}
		c, err := b.value(f.Type)
		if err != nil {
			return nil, fmt.Errorf("%s.%s: %w", t.Name(), f.Name, err)
		}
		c.name = name
		c.desc = describe(f.Name, fd.text)
		c.required = !strings.Contains(opts, "omitempty")
		c.m = merge(fd.markers, c.m)
		n.fields = append(n.fields, c)
	}
	return n, nil
}

// value builds the node of a field's type (without name or description).
func (b *builder) value(t reflect.Type) (*node, error) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	n := &node{goType: t, m: markers{}}
	if t.PkgPath() == b.pkgPath && t.Kind() != reflect.Struct {
		if td := b.docs[t.Name()]; td != nil {
			n.m = td.markers
			n.typeDesc = describe(t.Name(), td.text)
		}
	}
	switch t.Kind() {
	case reflect.String:
		n.shape = shString
	case reflect.Int, reflect.Int64, reflect.Int32:
		n.shape = shInteger
	case reflect.Bool:
		n.shape = shBoolean
	case reflect.Struct:
		o, err := b.object(t)
		if err != nil {
			return nil, err
		}
		o.m = n.m
		return o, nil
	case reflect.Slice:
		e, err := b.value(t.Elem())
		if err != nil {
			return nil, err
		}
		n.shape, n.elem = shArray, e
	case reflect.Map:
		if t.Key().Kind() != reflect.String || t.Elem().Kind() != reflect.String {
			return nil, fmt.Errorf("generate: unsupported map type %s", t)
		}
		n.shape = shMap
	default:
		return nil, fmt.Errorf("generate: unsupported type %s", t)
	}
	return n, nil
}

// merge returns the markers of a, then those of b for names a lacks.
func merge(a, b markers) markers {
	out := markers{}
	for k, v := range b {
		out[k] = v
	}
	for k, v := range a {
		out[k] = v
	}
	return out
}

// displayType is the type explain and the reference show.
func (n *node) displayType() string {
	if u, ok := n.m.get("type"); ok {
		return strings.ReplaceAll(u, ",", " | ")
	}
	switch n.shape {
	case shString:
		if n.goType.Name() == "Duration" {
			return "duration"
		}
		return "string"
	case shInteger:
		return "integer"
	case shBoolean:
		return "boolean"
	case shObject:
		return "Object"
	case shArray:
		return "[]" + n.elem.displayType()
	case shMap:
		return "map[string]string"
	}
	return "?"
}

// example returns the example marker with "\n" turned into line breaks.
func (n *node) example() string {
	e, _ := n.m.get("example")
	return strings.ReplaceAll(e, `\n`, "\n")
}

// leaf returns the innermost element of nested lists.
func (n *node) leaf() *node {
	for n.shape == shArray {
		n = n.elem
	}
	return n
}
