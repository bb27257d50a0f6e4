package diag

import (
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"
)

// Severity says whether a diagnostic blocks (Error) or only informs (Warning).
type Severity int

const (
	// Error is a problem that makes the input unusable.
	Error Severity = iota
	// Warning is a problem worth fixing that does not block; --strict turns it into an error.
	Warning
)

// String returns "error" or "warning".
func (s Severity) String() string {
	if s == Warning {
		return "warning"
	}
	return "error"
}

// MarshalJSON encodes the severity as its name.
func (s Severity) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// Pos is a position in a source file. Line and Column are 1-based; zero means unknown.
type Pos struct {
	File   string `json:"file"`
	Line   int    `json:"line"`
	Column int    `json:"column"`
}

// String formats the position as file:line:col, leaving out unknown parts.
func (p Pos) String() string {
	switch {
	case p.Line == 0:
		return p.File
	case p.Column == 0:
		return fmt.Sprintf("%s:%d", p.File, p.Line)
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Column)
}

// Diagnostic is one problem found in the configuration.
type Diagnostic struct {
	Severity Severity `json:"severity"`
	Pos
	// Path is the field path inside the document, such as spec.rules[0].behaviors[1].
	Path    string `json:"path"`
	Message string `json:"message"`
}

// String formats the diagnostic as "file:line:col: severity: path: message".
func (d Diagnostic) String() string {
	var b strings.Builder
	if d.File != "" {
		b.WriteString(d.Pos.String())
		b.WriteString(": ")
	}
	b.WriteString(d.Severity.String())
	b.WriteString(": ")
	if d.Path != "" {
		b.WriteString(d.Path)
		b.WriteString(": ")
	}
	b.WriteString(d.Message)
	return b.String()
}

// List is a collection of diagnostics.
type List []Diagnostic

// Errorf appends an error at pos.
func (l *List) Errorf(pos Pos, path, format string, args ...any) {
	*l = append(*l, Diagnostic{Severity: Error, Pos: pos, Path: path, Message: fmt.Sprintf(format, args...)})
}

// Warnf appends a warning at pos.
func (l *List) Warnf(pos Pos, path, format string, args ...any) {
	*l = append(*l, Diagnostic{Severity: Warning, Pos: pos, Path: path, Message: fmt.Sprintf(format, args...)})
}

// Append adds other diagnostics.
func (l *List) Append(other ...Diagnostic) { *l = append(*l, other...) }

// HasErrors reports whether any diagnostic is an error.
func (l List) HasErrors() bool { return l.Count(Error) > 0 }

// Count returns the number of diagnostics of severity s.
func (l List) Count(s Severity) int {
	n := 0
	for _, d := range l {
		if d.Severity == s {
			n++
		}
	}
	return n
}

// Err returns nil when the list holds no error, else an error summarising the list.
func (l List) Err() error {
	if !l.HasErrors() {
		return nil
	}
	return &ListError{List: l}
}

// ListError is an error carrying diagnostics.
type ListError struct{ List List }

func (e *ListError) Error() string {
	n := e.List.Count(Error)
	first := ""
	for _, d := range e.List {
		if d.Severity == Error {
			first = d.String()
			break
		}
	}
	if n == 1 {
		return first
	}
	return fmt.Sprintf("%s (and %d more errors)", first, n-1)
}

// Normalized returns the diagnostics sorted by file, line, column, severity,
// path and message, with exact duplicates removed. With strict set, warnings
// become errors. File names are made relative to wd when they lie beneath it.
func (l List) Normalized(wd string, strict bool) List {
	out := make(List, 0, len(l))
	for _, d := range l {
		if strict && d.Severity == Warning {
			d.Severity = Error
		}
		d.File = RelPath(wd, d.File)
		out = append(out, d)
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		if a.Column != b.Column {
			return a.Column < b.Column
		}
		if a.Severity != b.Severity {
			return a.Severity < b.Severity
		}
		if a.Path != b.Path {
			return a.Path < b.Path
		}
		return a.Message < b.Message
	})
	dedup := out[:0]
	for i, d := range out {
		if i > 0 && d == out[i-1] {
			continue
		}
		dedup = append(dedup, d)
	}
	return dedup
}

// RelPath returns file relative to wd when file lies beneath wd, else file unchanged.
func RelPath(wd, file string) string {
	if wd == "" || file == "" || !filepath.IsAbs(file) {
		return file
	}
	rel, err := filepath.Rel(wd, file)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return file
	}
	return rel
}

// WriteText prints one diagnostic per line.
func (l List) WriteText(w io.Writer) error {
	for _, d := range l {
		if _, err := fmt.Fprintln(w, d.String()); err != nil {
			return err
		}
	}
	return nil
}

// Report is the JSON form of a validation result.
type Report struct {
	Valid        bool         `json:"valid"`
	ErrorCount   int          `json:"errorCount"`
	WarningCount int          `json:"warningCount"`
	Diagnostics  []Diagnostic `json:"diagnostics"`
}

// Report builds the JSON report of the list.
func (l List) Report() Report {
	r := Report{ErrorCount: l.Count(Error), WarningCount: l.Count(Warning), Diagnostics: []Diagnostic(l)}
	if r.Diagnostics == nil {
		r.Diagnostics = []Diagnostic{}
	}
	r.Valid = r.ErrorCount == 0
	return r
}
