package server_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/edgectl/edgectl/pkg/manifest"
)

// TestLimitRefusalsCounted: a request refused by an application's limit
// is counted in edgectl_limit_refusals_total by domain and limit, and the
// access log names the limit.
func TestLimitRefusalsCounted(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	snap := f.snapshot(1, "v1")
	snap.Resources[2].Spec.(*manifest.ApplicationSpec).MaxRequestBodySize = "10B"
	f.write(t, snap)
	r := start(t, f, nil)
	c := r.client(f, "api.test", f.valid, false)
	for range 2 {
		resp, err := c.Post("https://api.test/upload", "text/plain", strings.NewReader(strings.Repeat("x", 11)))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatalf("status %d, want 413", resp.StatusCode)
		}
	}
	if got := r.metric(t, `edgectl_limit_refusals_total{domain="api",limit="request_body_size"}`); got != "2" {
		t.Errorf("edgectl_limit_refusals_total = %q, want 2", got)
	}
	eventually(t, "the access log to name the limit", func() bool {
		return strings.Contains(r.access.String(), `"limit":"request_body_size"`)
	})
}
