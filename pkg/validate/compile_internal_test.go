package validate

import (
	"strings"
	"testing"

	"github.com/edgectl/edgectl/pkg/manifest"
)

// TestCompileReportsServeCompilerProblems: a problem only the serve
// compiler finds (here an origin the semantic checks never saw, because the
// result is built by hand) becomes an error positioned at the resource.
func TestCompileReportsServeCompilerProblems(t *testing.T) {
	docs, diags := manifest.Parse("app.yaml", "/m", []byte(`apiVersion: edgectl.dev/v1
kind: Application
metadata: {name: app}
spec:
  origin:
    url: ftp://origin.internal
`))
	if len(diags) > 0 || len(docs) != 1 {
		t.Fatalf("parse: %v", diags)
	}
	r := &Result{Resources: map[string]map[string]*Resource{
		manifest.KindApplication: {"app": {Doc: docs[0]}},
	}}
	r.compile()
	if len(r.Diags) != 1 {
		t.Fatalf("want one diagnostic from the serve compiler, got %v", r.Diags)
	}
	d := r.Diags[0]
	if d.Path != "spec.origin" || d.Line != 5 || !strings.Contains(d.Message, "invalid origin URL") {
		t.Errorf("got %s (path %q)", d, d.Path)
	}
}
