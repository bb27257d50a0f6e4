// Package generate derives the JSON Schemas, the Markdown reference and the
// model of `edgectl explain` from one source: the manifest types of
// pkg/manifest, their doc comments, and the markers in those comments.
//
// A marker is a doc-comment line "+name" or "+name=value" (in the manner of
// Kubernetes' kubebuilder markers). On a field: enum=a,b (allowed values),
// default=, example= (YAML; "\n" is a line break), pattern=, minLength=,
// maxLength=, minimum=, maximum=, minItems=, uniqueItems, ref=Kind (the
// field names a resource of Kind), type=a,b (a union of JSON types) and
// phase=request,response (a behavior's phases), seeAlso= (further
// documentation, such as another explain command). On a struct type:
// oneOf=a,b (exactly one of the fields), requiredIf=field:other=value,
// forbiddenIf=field:other=v1,v2 (absent when other is one of the values,
// required otherwise), oneKey (exactly one field set; boolean fields take
// true) and behaviorsByPhase (the behaviors allowed follow the rule's
// phase). On a named type such as Duration, pattern= applies to every field
// of that type.
package generate

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
)

// markers are the "+name=value" lines of a doc comment; a name may repeat.
type markers map[string][]string

func (m markers) get(name string) (string, bool) {
	v, ok := m[name]
	if !ok || len(v) == 0 {
		return "", ok
	}
	return v[len(v)-1], true
}

func (m markers) has(name string) bool { _, ok := m[name]; return ok }

// docText is a doc comment split into prose and markers.
type docText struct {
	text    string
	markers markers
}

// typeDoc is what the source says about one named type.
type typeDoc struct {
	docText
	fields map[string]docText // by Go field name
}

// readSource parses the non-test Go files of dir and returns the docs of
// every named type.
func readSource(dir string) (map[string]*typeDoc, error) {
	fset := token.NewFileSet()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, err
	}
	out := map[string]*typeDoc{}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ParseComments)
		if err != nil {
			return nil, fmt.Errorf("generate: %w", err)
		}
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.TYPE {
				continue
			}
			for _, spec := range gd.Specs {
				ts := spec.(*ast.TypeSpec)
				doc := ts.Doc
				if doc == nil && len(gd.Specs) == 1 {
					doc = gd.Doc
				}
				td := &typeDoc{docText: splitDoc(doc), fields: map[string]docText{}}
				if st, ok := ts.Type.(*ast.StructType); ok {
					for _, fld := range st.Fields.List {
						for _, n := range fld.Names {
							td.fields[n.Name] = splitDoc(fld.Doc)
						}
					}
				}
				out[ts.Name.Name] = td
			}
		}
	}
	return out, nil
}

func splitDoc(g *ast.CommentGroup) docText {
	d := docText{markers: markers{}}
	if g == nil {
		return d
	}
	var prose []string
	for _, line := range strings.Split(g.Text(), "\n") {
		line = strings.TrimSpace(line)
		if rest, ok := strings.CutPrefix(line, "+"); ok && rest != "" {
			name, value, _ := strings.Cut(rest, "=")
			d.markers[name] = append(d.markers[name], value)
			continue
		}
		if line != "" {
			prose = append(prose, line)
		}
	}
	d.text = strings.Join(prose, " ")
	return d
}

// describe turns a Go doc comment about goName into a description of the
// YAML field: "Certificate is the PEM chain" becomes "The PEM chain",
// "Rules run in order" becomes "Run in order", "StatusCode of the response"
// becomes "Status code of the response".
func describe(goName, text string) string {
	rest, ok := strings.CutPrefix(text, goName+" ")
	if !ok {
		return text
	}
	for _, verb := range []string{"is ", "are "} {
		if r, ok := strings.CutPrefix(rest, verb); ok {
			return upperFirst(r)
		}
	}
	if strings.HasPrefix(rest, "of ") {
		return upperFirst(words(goName)) + " " + rest
	}
	return upperFirst(rest)
}

// words splits a Go name into lowercase words, keeping initialisms: StatusCode
// is "status code", URL is "URL".
func words(name string) string {
	var out []string
	start := 0
	rs := []rune(name)
	for i := 1; i <= len(rs); i++ {
		if i == len(rs) || (isUpper(rs[i]) && (!isUpper(rs[i-1]) || (i+1 < len(rs) && !isUpper(rs[i+1])))) {
			w := string(rs[start:i])
			if strings.ToUpper(w) != w || len(w) == 1 {
				w = strings.ToLower(w)
			}
			out = append(out, w)
			start = i
		}
	}
	return strings.Join(out, " ")
}

func isUpper(r rune) bool { return r >= 'A' && r <= 'Z' }

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func lowerFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToLower(s[:1]) + s[1:]
}
