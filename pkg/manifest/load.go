package manifest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/edgectl/edgectl/pkg/diag"
)

// StdinName is the file name given to documents read from standard input.
const StdinName = "<stdin>"

// MaxFileSize bounds a single manifest file so a stray binary cannot exhaust memory.
const MaxFileSize = 16 << 20

// Document is one YAML document of a manifest file.
type Document struct {
	// File is the path the document was read from, as given (absolute when found by walking a directory given as absolute), or StdinName.
	File string
	// Dir is the absolute directory that relative file references resolve against.
	Dir string
	// RootDir is the absolute manifest root: the directory given with -f
	// that the file was found in, or the file's own directory when the file
	// itself was given (the working directory for stdin). Relative private-key
	// references are stored relative to it, so that a plan does not depend on
	// where a checkout sits.
	RootDir string
	// Index is the 0-based position of the document in its file.
	Index int
	// Root is the document's top-level node (normally a mapping).
	Root *yaml.Node

	APIVersion string
	Kind       string
	Metadata   Metadata
	// Spec is a pointer to the typed spec of Kind (such as *DomainSpec), or nil
	// when the kind is unknown or the spec could not be decoded.
	Spec any
	// SpecErr is why the spec of a known kind does not decode strictly, such
	// as a field its Go type lacks, or nil. Validation reports it when the
	// schema did not already.
	SpecErr error
}

// Name returns metadata.name.
func (d *Document) Name() string { return d.Metadata.Name }

// Resolve returns a file reference made absolute against the document's directory.
func (d *Document) Resolve(ref string) string {
	if ref == "" || filepath.IsAbs(ref) {
		return ref
	}
	return filepath.Join(d.Dir, ref)
}

// Portable returns a file reference as it is stored in the state: an
// absolute reference unchanged, a relative one made relative to the manifest
// root (RootDir) with forward slashes, such as "certs/server-key.pem".
func (d *Document) Portable(ref string) string {
	if ref == "" || filepath.IsAbs(ref) {
		return ref
	}
	root := d.RootDir
	if root == "" {
		root = d.Dir
	}
	rel, err := filepath.Rel(root, d.Resolve(ref))
	if err != nil {
		return filepath.ToSlash(filepath.Clean(ref))
	}
	return filepath.ToSlash(rel)
}

// Pos returns the source position of the field at path (such as
// "spec.rules[0].behaviors[1]"). When the path does not exist in the
// document, the position of its deepest existing ancestor is returned.
func (d *Document) Pos(path string) diag.Pos {
	p := diag.Pos{File: d.File}
	n := d.Root
	if n == nil {
		return p
	}
	p.Line, p.Column = n.Line, n.Column
	for _, seg := range splitPath(path) {
		n = deref(n)
		var next, at *yaml.Node
		switch {
		case seg.key != "" && n.Kind == yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == seg.key {
					at, next = n.Content[i], n.Content[i+1]
				}
			}
		case seg.key == "" && n.Kind == yaml.SequenceNode && seg.index < len(n.Content):
			next = n.Content[seg.index]
			at = next
		}
		if next == nil {
			return p
		}
		p.Line, p.Column = at.Line, at.Column
		n = next
	}
	return p
}

// Errorf adds an error positioned at path to l.
func (d *Document) Errorf(l *diag.List, path, format string, args ...any) {
	l.Errorf(d.Pos(path), path, format, args...)
}

// Warnf adds a warning positioned at path to l.
func (d *Document) Warnf(l *diag.List, path, format string, args ...any) {
	l.Warnf(d.Pos(path), path, format, args...)
}

func deref(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		return deref(n.Content[0])
	}
	return n
}

type pathSeg struct {
	key   string
	index int
}

// splitPath splits "a.b[2][0].c" into segments.
func splitPath(path string) []pathSeg {
	var segs []pathSeg
	for _, part := range strings.Split(path, ".") {
		if part == "" {
			continue
		}
		key, rest, _ := strings.Cut(part, "[")
		if key != "" {
			segs = append(segs, pathSeg{key: key})
		}
		for rest != "" {
			num, after, ok := strings.Cut(rest, "]")
			if !ok {
				break
			}
			i := 0
			fmt.Sscanf(num, "%d", &i)
			segs = append(segs, pathSeg{index: i})
			rest = strings.TrimPrefix(after, "[")
		}
	}
	return segs
}

// Load reads every manifest named by inputs: files, directories (walked
// recursively for *.yaml and *.yml, in lexical order) and "-" for stdin.
// A file reached through several inputs is read once.
// Problems (unreadable files, YAML syntax, a document that is not a mapping)
// are returned as diagnostics; documents that could be read are returned
// even when others could not.
func Load(inputs []string, stdin io.Reader) ([]*Document, diag.List) {
	var docs []*Document
	var diags diag.List
	readStdin := false
	seen := map[string]bool{}
	for _, in := range inputs {
		if in == "-" {
			if readStdin {
				diags.Errorf(diag.Pos{File: StdinName}, "", "standard input given twice with -f -")
				continue
			}
			readStdin = true
			if stdin == nil {
				stdin = strings.NewReader("")
			}
			data, err := io.ReadAll(io.LimitReader(stdin, MaxFileSize+1))
			if err != nil {
				diags.Errorf(diag.Pos{File: StdinName}, "", "cannot read standard input: %v", err)
				continue
			}
			wd, _ := os.Getwd()
			d, ds := Parse(StdinName, wd, data)
			docs, diags = append(docs, d...), append(diags, ds...)
			continue
		}
		files, root, err := expand(in)
		if err != nil {
			diags.Errorf(diag.Pos{File: in}, "", "%v", err)
			continue
		}
		for _, f := range files {
			// "-f tests -f ." often reaches a file twice; read it once.
			key := f
			if abs, err := filepath.Abs(f); err == nil {
				key = abs
			}
			if seen[key] {
				continue
			}
			seen[key] = true
			d, ds := ReadFile(f)
			if root != "" {
				for _, doc := range d {
					doc.RootDir = root
				}
			}
			docs, diags = append(docs, d...), append(diags, ds...)
		}
	}
	return docs, diags
}

// expand turns an input into the list of manifest files it names, and the
// manifest root of a directory (its absolute path; "" for a file, whose root
// is its own directory).
func expand(in string) ([]string, string, error) {
	info, err := os.Stat(in)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, "", fmt.Errorf("no such file or directory")
		}
		return nil, "", err
	}
	if !info.IsDir() {
		return []string{in}, "", nil
	}
	root, err := filepath.Abs(in)
	if err != nil {
		return nil, "", err
	}
	var files []string
	err = filepath.WalkDir(in, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() {
			if p != in && strings.HasPrefix(e.Name(), ".") {
				return filepath.SkipDir
			}
			return nil
		}
		if ext := filepath.Ext(p); ext == ".yaml" || ext == ".yml" {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	if len(files) == 0 {
		return nil, "", fmt.Errorf("directory holds no *.yaml or *.yml file")
	}
	sort.Strings(files)
	return files, root, nil
}

// ReadFile reads and parses one manifest file.
func ReadFile(path string) ([]*Document, diag.List) {
	var diags diag.List
	f, err := os.Open(path)
	if err != nil {
		diags.Errorf(diag.Pos{File: path}, "", "cannot read manifest: %v", unwrapPathError(err))
		return nil, diags
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		diags.Errorf(diag.Pos{File: path}, "", "cannot read manifest: %v", unwrapPathError(err))
		return nil, diags
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = path
	}
	return Parse(path, filepath.Dir(abs), data)
}

func unwrapPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// Parse splits data into YAML documents and decodes each one. file names the
// source in diagnostics and dir is where relative references resolve.
func Parse(file, dir string, data []byte) ([]*Document, diag.List) {
	var docs []*Document
	var diags diag.List
	if len(data) > MaxFileSize {
		diags.Errorf(diag.Pos{File: file}, "", "manifest is larger than %d MiB", MaxFileSize>>20)
		return nil, diags
	}
	for _, chunk := range splitDocuments(data) {
		var root yaml.Node
		if err := yaml.Unmarshal(chunk.data, &root); err != nil {
			d := yamlError(file, err, chunk.data)
			if d.Line > 0 {
				d.Line += chunk.line - 1
			} else {
				d.Line = chunk.line
			}
			diags.Append(d)
			continue
		}
		shiftLines(&root, chunk.line-1)
		n := deref(&root)
		if n.Kind == 0 || (n.Kind == yaml.ScalarNode && n.Tag == "!!null") {
			continue // an empty document, such as a trailing "---"
		}
		if n.Kind != yaml.MappingNode {
			diags.Errorf(diag.Pos{File: file, Line: n.Line, Column: n.Column}, "", "a manifest document must be a mapping with apiVersion, kind, metadata and spec")
			continue
		}
		doc := &Document{File: file, Dir: dir, RootDir: dir, Index: len(docs), Root: n}
		doc.decodeEnvelope()
		docs = append(docs, doc)
	}
	return docs, diags
}

type chunk struct {
	data []byte
	line int // 1-based line of the chunk's first line in the file
}

// splitDocuments cuts a YAML stream at its document markers ("---" and
// "..." at the start of a line), so that a syntax error in one document does
// not hide the others. Each chunk keeps the line where it starts.
func splitDocuments(src []byte) []chunk {
	data := bytes.Clone(src)
	var chunks []chunk
	start, startLine, line := 0, 1, 1
	for i := 0; i < len(data); line++ {
		end := bytes.IndexByte(data[i:], '\n')
		if end < 0 {
			end = len(data)
		} else {
			end += i
		}
		if l := bytes.TrimRight(data[i:end], "\r"); isMarker(l, "---") || isMarker(l, "...") {
			chunks = append(chunks, chunk{data: data[start:i], line: startLine})
			// Content after "--- " belongs to the next document; blank the
			// marker itself so that columns stay right.
			copy(data[i:i+3], "   ")
			start, startLine = i, line
		}
		i = end + 1
	}
	return append(chunks, chunk{data: data[start:], line: startLine})
}

func isMarker(line []byte, m string) bool {
	return bytes.HasPrefix(line, []byte(m)) && (len(line) == 3 || line[3] == ' ' || line[3] == '\t')
}

func shiftLines(n *yaml.Node, by int) {
	if n == nil || by == 0 {
		return
	}
	n.Line += by
	for _, c := range n.Content {
		shiftLines(c, by)
	}
}

// yamlError turns a YAML error in data into a positioned diagnostic. A tab
// where YAML expects indentation or a token is reported as such, at the
// tab's column.
func yamlError(file string, err error, data []byte) diag.Diagnostic {
	d := diag.Diagnostic{Severity: diag.Error, Pos: diag.Pos{File: file}}
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "yaml: ")
	var line int
	if n, _ := fmt.Sscanf(msg, "line %d:", &line); n == 1 {
		d.Line = line
		msg = strings.TrimSpace(msg[strings.Index(msg, ":")+1:])
	}
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		msg = te.Errors[0]
	}
	if strings.Contains(msg, "cannot start any token") || strings.Contains(msg, "tab character") {
		if l, col, ok := findTab(data, d.Line); ok {
			d.Line, d.Column = l, col
			d.Message = "invalid YAML: a tab character: YAML indents with spaces only; replace the tab with spaces"
			return d
		}
	}
	d.Message = "invalid YAML: " + msg
	return d
}

// findTab finds the tab that a YAML error on line (1-based, in data; 0 when
// unknown) is about: on that line, else the next lines (the parser may
// report the line before), else the first one in data. It returns the
// tab's line and 1-based column.
func findTab(data []byte, line int) (int, int, bool) {
	lines := bytes.Split(data, []byte("\n"))
	try := func(i int) (int, int, bool) {
		if i < 0 || i >= len(lines) {
			return 0, 0, false
		}
		if col := bytes.IndexByte(lines[i], '\t'); col >= 0 {
			return i + 1, utf8.RuneCount(lines[i][:col]) + 1, true
		}
		return 0, 0, false
	}
	if line > 0 {
		for i := line - 1; i <= line+1; i++ {
			if l, c, ok := try(i); ok {
				return l, c, true
			}
		}
	}
	for i := range lines {
		if l, c, ok := try(i); ok {
			return l, c, true
		}
	}
	return 0, 0, false
}

// decodeEnvelope fills the envelope fields and the typed spec, leaving them
// empty where the document does not have the right shape; the schema
// reports those problems with positions.
func (d *Document) decodeEnvelope() {
	var env struct {
		APIVersion string    `yaml:"apiVersion"`
		Kind       string    `yaml:"kind"`
		Metadata   yaml.Node `yaml:"metadata"`
		Spec       yaml.Node `yaml:"spec"`
	}
	for i := 0; i+1 < len(d.Root.Content); i += 2 {
		k, v := d.Root.Content[i].Value, deref(d.Root.Content[i+1])
		switch k {
		case "apiVersion":
			if v.Kind == yaml.ScalarNode {
				env.APIVersion = v.Value
			}
		case "kind":
			if v.Kind == yaml.ScalarNode {
				env.Kind = v.Value
			}
		case "metadata":
			env.Metadata = *v
		case "spec":
			env.Spec = *v
		}
	}
	d.APIVersion, d.Kind = env.APIVersion, env.Kind
	if env.Metadata.Kind == yaml.MappingNode {
		var m Metadata
		if env.Metadata.Decode(&m) == nil {
			d.Metadata = m
		} else {
			// Keep at least the name so references still resolve.
			for i := 0; i+1 < len(env.Metadata.Content); i += 2 {
				if env.Metadata.Content[i].Value == "name" && env.Metadata.Content[i+1].Kind == yaml.ScalarNode {
					d.Metadata.Name = env.Metadata.Content[i+1].Value
				}
			}
		}
	}
	spec := NewSpec(d.Kind)
	if spec == nil || env.Spec.Kind != yaml.MappingNode {
		return
	}
	if err := env.Spec.Decode(spec); err != nil {
		d.SpecErr = err
		return
	}
	// Spec stays set so that the other checks still run and every problem
	// shows at once; SpecErr makes validation fail.
	d.Spec = spec
	d.SpecErr = knownFields(&env.Spec, NewSpec(d.Kind))
}

// knownFields checks n against v's type as yaml's KnownFields decoding
// does, so that a field the Go type lacks is an error rather than silently
// dropped: the JSON Schema and the Go types cannot disagree without a
// diagnostic. It walks the nodes instead of decoding them a second time.
func knownFields(n *yaml.Node, v any) error {
	var unknown []string
	checkKnown(n, reflect.TypeOf(v), &unknown, 0)
	if len(unknown) == 0 {
		return nil
	}
	return fmt.Errorf("%s", strings.Join(unknown, "; "))
}

// checkKnown appends to unknown a message for every mapping key below n
// that the struct type t (or its elements) lacks.
func checkKnown(n *yaml.Node, t reflect.Type, unknown *[]string, depth int) {
	n = deref(n)
	if n == nil || depth > 64 {
		return
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t.Kind() == reflect.Struct && n.Kind == yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			key, val := n.Content[i].Value, n.Content[i+1]
			if key == "<<" { // a merge key: its mapping's keys belong to t
				checkKnown(val, t, unknown, depth+1)
				continue
			}
			f, ok := yamlField(t, key)
			if !ok {
				*unknown = append(*unknown, fmt.Sprintf("field %s not found in type %s", key, t))
				continue
			}
			checkKnown(val, f.Type, unknown, depth+1)
		}
	case (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) && n.Kind == yaml.SequenceNode:
		for _, c := range n.Content {
			checkKnown(c, t.Elem(), unknown, depth+1)
		}
	case t.Kind() == reflect.Map && n.Kind == yaml.MappingNode:
		for i := 1; i < len(n.Content); i += 2 {
			checkKnown(n.Content[i], t.Elem(), unknown, depth+1)
		}
	}
}

// yamlField returns the field of struct type t whose yaml name is name.
func yamlField(t reflect.Type, name string) (reflect.StructField, bool) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if tag == "-" || !f.IsExported() {
			continue
		}
		if tag == "" {
			tag = strings.ToLower(f.Name)
		}
		if tag == name {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// NewSpec returns a pointer to a new zero spec of kind, or nil for an unknown kind.
func NewSpec(kind string) any {
	switch kind {
	case KindCertificate:
		return &CertificateSpec{}
	case KindTrustedCA:
		return &TrustedCASpec{}
	case KindNetworkList:
		return &NetworkListSpec{}
	case KindApplication:
		return &ApplicationSpec{}
	case KindFirewall:
		return &FirewallSpec{}
	case KindDomain:
		return &DomainSpec{}
	case KindTestSuite:
		return &TestSuiteSpec{}
	}
	return nil
}

// Value converts the document to plain JSON-compatible values (maps, slices,
// strings, float64/int64, bools, nil) for JSON Schema validation. Scalars
// follow their YAML tags; timestamps and other exotic tags stay strings.
func (d *Document) Value() any { return nodeValue(d.Root, 0) }

func nodeValue(n *yaml.Node, depth int) any {
	if depth > 100 {
		return nil
	}
	n = deref(n)
	switch n.Kind {
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := deref(n.Content[i])
			if k.Tag == "!!merge" {
				if sub, ok := nodeValue(n.Content[i+1], depth+1).(map[string]any); ok {
					for sk, sv := range sub {
						if _, set := m[sk]; !set {
							m[sk] = sv
						}
					}
				}
				continue
			}
			m[k.Value] = nodeValue(n.Content[i+1], depth+1)
		}
		return m
	case yaml.SequenceNode:
		s := make([]any, len(n.Content))
		for i, c := range n.Content {
			s[i] = nodeValue(c, depth+1)
		}
		return s
	case yaml.ScalarNode:
		var v any
		switch n.ShortTag() {
		case "!!null":
			return nil
		case "!!bool", "!!int", "!!float":
			if n.Decode(&v) == nil {
				if i, ok := v.(int); ok {
					return int64(i)
				}
				return v
			}
		}
		return n.Value
	}
	return nil
}
