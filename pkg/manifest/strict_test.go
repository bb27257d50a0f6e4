package manifest

import (
	"strings"
	"testing"
)

// TestSpecDecodingIsStrict: a field the Go type lacks is never dropped
// silently, even where a schema would let it through; the rest of the spec
// still decodes so that every other problem can be reported.
func TestSpecDecodingIsStrict(t *testing.T) {
	tests := map[string]struct {
		doc     string
		wantErr string // substring of SpecErr; "" for none
	}{
		"known fields": {doc: `
apiVersion: edgectl.dev/v1
kind: Domain
metadata: {name: d}
spec: {hostnames: [a.example], certificate: c, application: a, mtls: {enabled: true, trustedCA: ca}}`},
		"unknown spec field": {doc: `
apiVersion: edgectl.dev/v1
kind: Domain
metadata: {name: d}
spec: {hostnames: [a.example], certificate: c, application: a, hostname: b.example}`, wantErr: "field hostname not found"},
		"unknown nested field": {doc: `
apiVersion: edgectl.dev/v1
kind: Application
metadata: {name: a}
spec:
  origin: {url: "http://127.0.0.1:9000", timeout: 5s}`, wantErr: "field timeout not found"},
		"anchors and aliases": {doc: `
apiVersion: edgectl.dev/v1
kind: Firewall
metadata: {name: f}
spec:
  rules:
    - name: a
      behaviors: &deny [{deny: true}]
    - name: b
      behaviors: *deny`},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			docs, diags := Parse("m.yaml", t.TempDir(), []byte(tt.doc))
			if len(diags) > 0 || len(docs) != 1 {
				t.Fatalf("Parse: %d docs, %v", len(docs), diags)
			}
			d := docs[0]
			if d.Spec == nil {
				t.Fatalf("Spec is nil (SpecErr %v); want the spec decoded", d.SpecErr)
			}
			switch {
			case tt.wantErr == "" && d.SpecErr != nil:
				t.Errorf("SpecErr = %v, want nil", d.SpecErr)
			case tt.wantErr != "" && (d.SpecErr == nil || !strings.Contains(d.SpecErr.Error(), tt.wantErr)):
				t.Errorf("SpecErr = %v, want it to contain %q", d.SpecErr, tt.wantErr)
			case d.SpecErr != nil && strings.Contains(d.SpecErr.Error(), "line "):
				t.Errorf("SpecErr %q names a line of the re-encoded spec", d.SpecErr)
			}
		})
	}
}

func TestStrictDecodingAllowsAnchorsOutsideTheSpec(t *testing.T) {
	docs, _ := Parse("m.yaml", t.TempDir(), []byte(`
apiVersion: edgectl.dev/v1
kind: NetworkList
metadata: {name: &n office, labels: {list: *n}}
spec: {type: ipCidr, items: [*n]}`))
	if len(docs) != 1 || docs[0].SpecErr != nil {
		t.Fatalf("SpecErr = %v, want nil", docs[0].SpecErr)
	}
}
