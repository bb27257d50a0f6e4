package diag

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestNormalized(t *testing.T) {
	var l List
	l.Warnf(Pos{File: "/w/b.yaml", Line: 3, Column: 1}, "spec", "soon")
	l.Errorf(Pos{File: "/w/a.yaml", Line: 9, Column: 2}, "spec.x", "bad")
	l.Errorf(Pos{File: "/w/a.yaml", Line: 2, Column: 5}, "", "worse")
	l.Errorf(Pos{File: "/w/a.yaml", Line: 9, Column: 2}, "spec.x", "bad")
	l.Errorf(Pos{File: "/elsewhere/c.yaml", Line: 1, Column: 1}, "kind", "odd")
	tests := map[string]struct {
		strict bool
		want   []string
	}{
		"sorted, deduplicated, relative": {want: []string{
			"/elsewhere/c.yaml:1:1: error: kind: odd",
			"a.yaml:2:5: error: worse",
			"a.yaml:9:2: error: spec.x: bad",
			"b.yaml:3:1: warning: spec: soon",
		}},
		"strict makes warnings errors": {strict: true, want: []string{
			"/elsewhere/c.yaml:1:1: error: kind: odd",
			"a.yaml:2:5: error: worse",
			"a.yaml:9:2: error: spec.x: bad",
			"b.yaml:3:1: error: spec: soon",
		}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var got []string
			for _, d := range l.Normalized("/w", tc.strict) {
				got = append(got, d.String())
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestReportJSON(t *testing.T) {
	var l List
	l.Warnf(Pos{File: "a.yaml", Line: 1, Column: 2}, "spec", "w")
	b, err := json.Marshal(l.Report())
	if err != nil {
		t.Fatal(err)
	}
	want := `{"valid":true,"errorCount":0,"warningCount":1,"diagnostics":[{"severity":"warning","file":"a.yaml","line":1,"column":2,"path":"spec","message":"w"}]}`
	if string(b) != want {
		t.Errorf("got  %s\nwant %s", b, want)
	}
	b, _ = json.Marshal(List(nil).Report())
	if want := `{"valid":true,"errorCount":0,"warningCount":0,"diagnostics":[]}`; string(b) != want {
		t.Errorf("empty report: got %s", b)
	}
}

func TestWriteMarkdown(t *testing.T) {
	var l List
	l.Warnf(Pos{File: "m/a.yaml", Line: 3, Column: 1}, "spec.tls", "no effect")
	l.Errorf(Pos{File: "m/a.yaml", Line: 7, Column: 5}, "spec.rules[0].name", "bad `name` with *stars* and <html>")
	l.Errorf(Pos{File: "<stdin>"}, "", "cannot read")
	var b strings.Builder
	if err := l.WriteMarkdown(&b, MarkdownOptions{Title: "edgectl plan", Outcome: "Nothing was planned."}); err != nil {
		t.Fatal(err)
	}
	want := "### edgectl plan\n\n" +
		"❌ **The manifests are invalid: 2 errors, 1 warning.** Nothing was planned.\n\n" +
		"- **error** `m/a.yaml:7:5` `spec.rules[0].name`: bad \\`name\\` with \\*stars\\* and \\<html\\>\n" +
		"- **error** `<stdin>`: cannot read\n" +
		"- **warning** `m/a.yaml:3:1` `spec.tls`: no effect\n"
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}

	// A long list stays under the limit and says how many are left out.
	var long List
	for i := 0; i < 500; i++ {
		long.Errorf(Pos{File: "m/a.yaml", Line: i + 1, Column: 1}, "spec", "problem number %d", i)
	}
	b.Reset()
	if err := long.WriteMarkdown(&b, MarkdownOptions{MaxLength: 2000}); err != nil {
		t.Fatal(err)
	}
	if b.Len() > 2000 || !strings.Contains(b.String(), "more diagnostics not shown") {
		t.Errorf("%d bytes:\n%s", b.Len(), b.String())
	}
}
