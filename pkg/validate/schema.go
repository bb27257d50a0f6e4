package validate

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v5"

	"github.com/edgectl/edgectl/pkg/diag"
	"github.com/edgectl/edgectl/pkg/manifest"
	"github.com/edgectl/edgectl/schemas"
)

var (
	schemaOnce sync.Once
	schema     *jsonschema.Schema
	schemaErr  error
)

func compiledSchema() (*jsonschema.Schema, error) {
	schemaOnce.Do(func() { schema, schemaErr = schemas.Compile() })
	return schema, schemaErr
}

// checkSchema validates one document against the embedded schemas. It
// returns the field paths the schema found wrong (empty when the document is
// valid), so that semantic checks do not report the same place twice.
func checkSchema(doc *manifest.Document, diags *diag.List) (bad []string) {
	s, err := compiledSchema()
	if err != nil {
		// The schemas are embedded and tested; this is a build defect.
		diags.Errorf(diag.Pos{File: doc.File}, "", "internal error: embedded schemas do not compile: %v", err)
		return []string{""}
	}
	err = s.Validate(doc.Value())
	if err == nil {
		return nil
	}
	leaves := schemas.Leaves(err)
	if len(leaves) == 0 {
		doc.Errorf(diags, "", "%v", err)
		return []string{""}
	}
	typos := typoFields(leaves)
	for _, leaf := range leaves {
		path := pointerToPath(leaf.InstanceLocation)
		if strings.HasPrefix(leaf.Message, "missing properties: ") && !strings.Contains(leaf.Message, " or ") {
			// A required field that is only misspelt is reported once, as the
			// unknown field with its suggestion.
			var missing []string
			for _, n := range quotedNames(leaf.Message) {
				if !typos[joinPath(path, n)] {
					missing = append(missing, "'"+n+"'")
				} else {
					bad = append(bad, joinPath(path, n))
				}
			}
			if len(missing) == 0 {
				continue
			}
			copied := *leaf
			copied.Message = "missing properties: " + strings.Join(missing, ", ")
			leaf = &copied
		}
		if names := quotedNames(leaf.Message); strings.HasPrefix(leaf.Message, "additionalProperties ") && len(names) > 1 {
			// Each unknown field at its own key, with its own suggestion.
			for _, n := range names {
				copied := *leaf
				copied.Message = "additionalProperties '" + n + "' not allowed"
				msg, at, fields := schemaMessage(doc, path, &copied)
				doc.Errorf(diags, at, "%s", msg)
				bad = append(bad, fields...)
			}
			continue
		}
		msg, at, fields := schemaMessage(doc, path, leaf)
		doc.Errorf(diags, at, "%s", msg)
		bad = append(bad, fields...)
	}
	return bad
}

// requiredProperties finds the required property names of the schema that
// produced e, an additionalProperties error.
func requiredProperties(e *jsonschema.ValidationError) []string {
	s, err := compiledSchema()
	if err != nil || s == nil {
		return nil
	}
	loc := strings.TrimSuffix(e.AbsoluteKeywordLocation, "/additionalProperties")
	if sch := findSchema(s, loc, map[*jsonschema.Schema]bool{}); sch != nil {
		return sch.Required
	}
	return nil
}

// typoFields returns the paths of fields that an unknown field is a likely
// misspelling of (spec.certificate for spec.certificat).
func typoFields(leaves []*jsonschema.ValidationError) map[string]bool {
	out := map[string]bool{}
	for _, leaf := range leaves {
		if !strings.HasPrefix(leaf.Message, "additionalProperties ") {
			continue
		}
		path := pointerToPath(leaf.InstanceLocation)
		for _, n := range quotedNames(leaf.Message) {
			if best := diag.Closest(n, allowedProperties(leaf)); best != "" {
				out[joinPath(path, best)] = true
			}
		}
	}
	return out
}

// overlaps reports whether path is one of bad, inside one, or contains one.
func overlaps(path string, bad []string) bool {
	for _, b := range bad {
		if b == "" || path == "" || within(path, b) || within(b, path) {
			return true
		}
	}
	return false
}

// within reports whether path equals parent or lies beneath it.
func within(path, parent string) bool {
	if !strings.HasPrefix(path, parent) {
		return false
	}
	rest := path[len(parent):]
	return rest == "" || rest[0] == '.' || rest[0] == '['
}

// pointerToPath turns a JSON pointer (/spec/rules/0/name) into a field path
// (spec.rules[0].name).
func pointerToPath(ptr string) string {
	if ptr == "" || ptr == "/" {
		return ""
	}
	var b strings.Builder
	for _, tok := range strings.Split(strings.TrimPrefix(ptr, "/"), "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		if _, err := strconv.Atoi(tok); err == nil {
			b.WriteString("[" + tok + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(tok)
	}
	return b.String()
}

func joinPath(path, field string) string {
	if path == "" {
		return field
	}
	return path + "." + field
}

// schemaMessage rewrites the validator's wording into the words of the
// manifest language, and moves the position onto the offending key where
// there is one.
func schemaMessage(doc *manifest.Document, path string, e *jsonschema.ValidationError) (msg, at string, fields []string) {
	msg, at = schemaWording(doc, path, e)
	if strings.HasPrefix(e.Message, "missing properties: ") {
		for _, n := range quotedNames(e.Message) {
			fields = append(fields, joinPath(path, n))
		}
		return msg, at, fields
	}
	return msg, at, []string{at}
}

func schemaWording(doc *manifest.Document, path string, e *jsonschema.ValidationError) (msg, at string) {
	m := e.Message
	switch {
	case strings.HasPrefix(m, "additionalProperties "):
		// additionalProperties 'foo', 'bar' not allowed
		names := quotedNames(m)
		if len(names) > 0 {
			field := joinPath(path, names[0])
			if doc.Kind == manifest.KindCertificate && path == "spec" && names[0] == "privateKey" {
				return "inline private keys are refused: keys do not belong in Git; use privateKeyFile or privateKeyEnv", field
			}
			if len(names) == 1 {
				hint := suggestField(doc, path, names[0], e)
				if strings.HasPrefix(hint, "; the fields here are") && doc.Kind != "" {
					// No likely typo: say where the fields are documented.
					hint += fmt.Sprintf(" (edgectl explain %s)", explainPath(doc.Kind, path))
				}
				return fmt.Sprintf("unknown field %q%s", names[0], hint), field
			}
			return fmt.Sprintf("unknown fields %s", strings.Join(quoteAll(names), ", ")), field
		}
	case strings.HasPrefix(m, "missing properties: "):
		names := quotedNames(m)
		if strings.Contains(m, " or ") {
			return fmt.Sprintf("set one of the fields %s", strings.Join(quoteAll(names), ", ")), path
		}
		if len(names) == 1 {
			return fmt.Sprintf("missing required field %q", names[0]), path
		}
		return fmt.Sprintf("missing required fields %s", strings.Join(quoteAll(names), ", ")), path
	case strings.HasPrefix(m, "valid against schemas at indexes "):
		if fields := oneOfFields(e); len(fields) > 0 {
			return fmt.Sprintf("set only one of the fields %s", strings.Join(quoteAll(fields), ", ")), path
		}
	case strings.HasPrefix(m, "maximum 1 properties allowed") && strings.Contains(path, "behaviors["):
		return "a behavior has exactly one key: write each behavior as its own list entry", path
	case m == "not allowed" && strings.HasSuffix(path, ".argument"):
		return "this operator takes no argument", path
	case strings.HasPrefix(m, "value must be one of ") && strings.Contains(path, "behaviors[") && strings.HasSuffix(e.KeywordLocation, "/propertyNames/enum"):
		key := path[strings.LastIndex(path, ".")+1:]
		phase := "request"
		if v, ok := lookup(doc.Value(), path[:strings.Index(path, ".behaviors[")]+".phase"); ok && v == "response" {
			phase = "response"
		}
		return fmt.Sprintf("behavior %q is not allowed in the %s phase; use one of %s", key, phase, strings.TrimPrefix(m, "value must be one of ")), path
	case strings.HasPrefix(m, "value must be one of ") && path == "kind":
		if v, ok := lookup(doc.Value(), "kind"); ok {
			if k, ok := v.(string); ok {
				hint := ""
				if best := suggest(k, manifest.Kinds); best != "" {
					hint = fmt.Sprintf(" (did you mean %q?)", best)
				} else if best := caseInsensitive(k, manifest.Kinds); best != "" {
					hint = fmt.Sprintf(" (did you mean %q? kinds are written in UpperCamelCase)", best)
				}
				return fmt.Sprintf("unknown kind %q%s; the kinds are %s", k, hint, strings.Join(manifest.Kinds, ", ")), path
			}
		}
		return "must be one of " + strings.TrimPrefix(m, "value must be one of "), path
	case strings.HasPrefix(m, "value must be one of "):
		return "must be one of " + strings.TrimPrefix(m, "value must be one of "), path
	case strings.HasPrefix(m, "expected "):
		return m, path
	case strings.HasPrefix(m, "does not match pattern "):
		return fmt.Sprintf("%s does not match the required pattern %s", describe(doc, path), strings.TrimPrefix(m, "does not match pattern ")), path
	}
	return m, path
}

func describe(doc *manifest.Document, path string) string {
	if v, ok := lookup(doc.Value(), path); ok {
		if s, ok := v.(string); ok {
			if len(s) > 60 {
				s = s[:57] + "..."
			}
			return strconv.Quote(s)
		}
	}
	return "value"
}

// lookup finds the value at path in a JSON-compatible tree.
func lookup(v any, path string) (any, bool) {
	if path == "" {
		return v, true
	}
	for _, part := range strings.Split(strings.ReplaceAll(path, "[", ".["), ".") {
		if part == "" {
			continue
		}
		if strings.HasPrefix(part, "[") {
			i, _ := strconv.Atoi(strings.Trim(part, "[]"))
			s, ok := v.([]any)
			if !ok || i >= len(s) {
				return nil, false
			}
			v = s[i]
			continue
		}
		m, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = m[part]; !ok {
			return nil, false
		}
	}
	return v, true
}

func quotedNames(m string) []string {
	var out []string
	for {
		i := strings.IndexByte(m, '\'')
		if i < 0 {
			return out
		}
		j := strings.IndexByte(m[i+1:], '\'')
		if j < 0 {
			return out
		}
		out = append(out, m[i+1:i+1+j])
		m = m[i+2+j:]
	}
}

func quoteAll(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = strconv.Quote(n)
	}
	return out
}

// suggestField proposes the allowed property closest to an unknown one,
// saying when it is a required field that is missing.
func suggestField(doc *manifest.Document, path, name string, e *jsonschema.ValidationError) string {
	allowed := allowedProperties(e)
	best := diag.Closest(name, allowed)
	if best == "" {
		if len(allowed) > 0 && len(allowed) <= 12 {
			return fmt.Sprintf("; the fields here are %s", strings.Join(allowed, ", "))
		}
		return ""
	}
	_, present := lookup(doc.Value(), joinPath(path, best))
	if !present && slices.Contains(requiredProperties(e), best) {
		return fmt.Sprintf(" (did you mean %q? it is required and missing)", best)
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// oneOfFields lists the required fields of the alternatives of the oneOf
// that produced e, such as certificate and certificateFile.
func oneOfFields(e *jsonschema.ValidationError) []string {
	s, err := compiledSchema()
	if err != nil {
		return nil
	}
	loc := strings.TrimSuffix(e.AbsoluteKeywordLocation, "/oneOf")
	sch := findSchema(s, loc, map[*jsonschema.Schema]bool{})
	if sch == nil {
		return nil
	}
	var out []string
	for _, alt := range sch.OneOf {
		out = append(out, alt.Required...)
	}
	return out
}

// allowedProperties finds the property names of the schema that produced e.
func allowedProperties(e *jsonschema.ValidationError) []string {
	s, err := compiledSchema()
	if err != nil || s == nil {
		return nil
	}
	loc := strings.TrimSuffix(e.AbsoluteKeywordLocation, "/additionalProperties")
	sch := findSchema(s, loc, map[*jsonschema.Schema]bool{})
	if sch == nil {
		return nil
	}
	names := make([]string, 0, len(sch.Properties))
	for n := range sch.Properties {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func findSchema(s *jsonschema.Schema, loc string, seen map[*jsonschema.Schema]bool) *jsonschema.Schema {
	if s == nil || seen[s] {
		return nil
	}
	seen[s] = true
	if s.Location == loc {
		return s
	}
	kids := []*jsonschema.Schema{s.Ref, s.If, s.Then, s.Else, s.Not, s.Items2020}
	kids = append(kids, s.AllOf...)
	kids = append(kids, s.AnyOf...)
	kids = append(kids, s.OneOf...)
	if it, ok := s.Items.(*jsonschema.Schema); ok {
		kids = append(kids, it)
	}
	if ap, ok := s.AdditionalProperties.(*jsonschema.Schema); ok {
		kids = append(kids, ap)
	}
	for _, p := range s.Properties {
		kids = append(kids, p)
	}
	for _, k := range kids {
		if f := findSchema(k, loc, seen); f != nil {
			return f
		}
	}
	return nil
}

// caseInsensitive returns the candidate equal to name but for case.
func caseInsensitive(name string, candidates []string) string {
	for _, c := range candidates {
		if strings.EqualFold(c, name) {
			return c
		}
	}
	return ""
}

// explainPath turns a kind and a field path such as spec.rules[0].behaviors[1]
// into the path edgectl explain takes: Application.spec.rules.behaviors.
func explainPath(kind, path string) string {
	var b strings.Builder
	b.WriteString(kind)
	depth := 0
	for _, r := range path {
		switch {
		case r == '[':
			depth++
		case r == ']':
			depth--
		case depth > 0:
		default:
			if b.Len() == len(kind) && path != "" {
				b.WriteByte('.')
			}
			b.WriteRune(r)
		}
	}
	return b.String()
}
