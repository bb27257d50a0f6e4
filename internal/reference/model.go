package reference

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
)

// Model is the manifest language: its kinds and everything a rule can use.
type Model struct {
	// APIVersion is the manifest API version the kinds belong to.
	APIVersion string `json:"apiVersion"`
	// Kinds are the manifest kinds in dependency order; each is the root of its fields.
	Kinds []*Field `json:"kinds"`
	// Variables are the variables of both rules engines, the firewall's first.
	Variables []Variable `json:"variables"`
	// Operators are the operators of criteria.
	Operators []Operator `json:"operators"`
}

// Variable is one variable of one rules engine.
type Variable struct {
	// Name as written without ${}; a family such as "http_<header>".
	Name string `json:"name"`
	// Engine is firewall or application.
	Engine string `json:"engine"`
	// Phases are the rule phases the variable exists in.
	Phases []string `json:"phases"`
	// Format is the exact form of the value.
	Format string `json:"format"`
	// Example is a value.
	Example string `json:"example"`
	// Origin is where the variable comes from: Azion, nginx or edgectl.
	Origin string `json:"origin"`
}

// Operator is one operator of criteria.
type Operator struct {
	// Name is the operator as written.
	Name string `json:"name"`
	// Argument describes the argument it takes.
	Argument string `json:"argument"`
	// Description says when the comparison is true.
	Description string `json:"description"`
}

// Field is one kind or one field of a manifest.
type Field struct {
	// Name is the kind (for a root) or the field name as written in YAML.
	Name string `json:"name"`
	// Type is a display type: string, integer, boolean, duration, Object,
	// []Object, [][]Object, []string, map[string]string or a union "a | b".
	Type string `json:"type"`
	// Description is the field's own documentation.
	Description string `json:"description"`
	// Required is true when the field must be present.
	Required bool `json:"required,omitempty"`
	// Enum lists the allowed values, if restricted.
	Enum []string `json:"enum,omitempty"`
	// Default is the value used when the field is absent.
	Default string `json:"default,omitempty"`
	// Example is a value in YAML flow or block form.
	Example string `json:"example,omitempty"`
	// Ref is the kind whose resource this field names.
	Ref string `json:"ref,omitempty"`
	// Phases are the rule phases a behavior is allowed in.
	Phases []string `json:"phases,omitempty"`
	// SeeAlso points to further documentation, such as another explain command.
	SeeAlso string `json:"seeAlso,omitempty"`
	// Constraints are the other rules the value obeys, as sentences.
	Constraints []string `json:"constraints,omitempty"`
	// Fields are the children of an object (or of the objects of a list).
	Fields []*Field `json:"fields,omitempty"`
}

//go:embed model.json
var modelJSON []byte

var (
	loadOnce sync.Once
	loaded   *Model
	loadErr  error
)

// Load returns the embedded model.
func Load() (*Model, error) {
	loadOnce.Do(func() {
		var m Model
		if err := json.Unmarshal(modelJSON, &m); err != nil {
			loadErr = fmt.Errorf("reference: embedded model: %w", err)
			return
		}
		loaded = &m
	})
	return loaded, loadErr
}

// Child returns the field's child called name, or nil.
func (f *Field) Child(name string) *Field {
	for _, c := range f.Fields {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// Kind returns the kind called name (case-insensitive), or nil.
func (m *Model) Kind(name string) *Field {
	for _, k := range m.Kinds {
		if strings.EqualFold(k.Name, name) {
			return k
		}
	}
	return nil
}

// KindNames returns the names of every kind.
func (m *Model) KindNames() []string {
	var out []string
	for _, k := range m.Kinds {
		out = append(out, k.Name)
	}
	return out
}

// LookupError is an unknown kind or field path.
type LookupError struct {
	// Path is the part of the path that resolved, such as "Domain.spec".
	Path string
	// Name is the segment that did not resolve.
	Name string
	// Suggestion is the closest known name, or "".
	Suggestion string
	// Known lists the names that would have resolved.
	Known []string
}

func (e *LookupError) Error() string {
	var msg string
	if e.Path == "" {
		msg = fmt.Sprintf("unknown kind %q", e.Name)
	} else {
		msg = fmt.Sprintf("unknown field %q in %s", e.Name, e.Path)
	}
	if e.Suggestion != "" {
		full := e.Suggestion
		if e.Path != "" {
			full = e.Path + "." + e.Suggestion
		}
		msg += fmt.Sprintf("; did you mean %q?", full)
	}
	if len(e.Known) > 0 {
		what := "kinds"
		if e.Path != "" {
			what = "fields of " + e.Path
		}
		msg += fmt.Sprintf(" (%s: %s)", what, strings.Join(e.Known, ", "))
	}
	return msg
}

// Lookup resolves a path such as "Domain.spec.mtls.trustedCA" (the kind is
// case-insensitive; list fields are entered without an index, as in
// "Application.spec.rules.behaviors.addRequestHeader"). It returns the
// kind's root, the field and the canonical path of the field.
func (m *Model) Lookup(path string) (kind, field *Field, canonical string, err error) {
	segs := strings.Split(strings.Trim(path, "."), ".")
	kind = m.Kind(segs[0])
	if kind == nil {
		names := m.KindNames()
		return nil, nil, "", &LookupError{Name: segs[0], Suggestion: Closest(segs[0], names), Known: names}
	}
	field, canonical = kind, kind.Name
	for _, s := range segs[1:] {
		s = strings.TrimSuffix(s, "[]")
		next := field.Child(s)
		if next == nil {
			for _, c := range field.Fields { // forgive the case of a field name
				if strings.EqualFold(c.Name, s) {
					next = c
				}
			}
		}
		if next == nil {
			var names []string
			for _, c := range field.Fields {
				names = append(names, c.Name)
			}
			return kind, nil, canonical, &LookupError{Path: canonical, Name: s, Suggestion: Closest(s, names), Known: names}
		}
		field, canonical = next, canonical+"."+next.Name
	}
	return kind, field, canonical, nil
}

// Closest returns the candidate nearest to s by edit distance (ignoring
// case), or "" when none is close enough to be a likely typo.
func Closest(s string, candidates []string) string {
	best, bestD := "", -1
	sorted := append([]string(nil), candidates...)
	sort.Strings(sorted)
	ls := strings.ToLower(s)
	for _, c := range sorted {
		d := distance(ls, strings.ToLower(c))
		if bestD < 0 || d < bestD {
			best, bestD = c, d
		}
	}
	if bestD < 0 || bestD > max(2, len(s)/3) {
		return ""
	}
	return best
}

// distance is the Levenshtein distance between a and b.
func distance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}
