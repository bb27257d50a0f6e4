package edgetest_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/edgectl/edgectl/pkg/edgetest"
	"github.com/edgectl/edgectl/pkg/manifest"
	"github.com/edgectl/edgectl/pkg/server"
)

// TestInProcessEdgeIsServe shows that the in-process edge of edgectl test
// runs the serving path of edgectl serve (pkg/server), not a look-alike: a
// request whose headers exceed serve's limit (server.DefaultMaxHeaderBytes,
// 64 KiB, with net/http's slack) is answered 431 by the edge and never reaches the origin, where a
// plain net/http server (1 MiB) would have proxied it.
func TestInProcessEdgeIsServe(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	e := f.start(t)
	big := strings.Repeat("a", 2*server.DefaultMaxHeaderBytes)
	cases := []manifest.TestCase{
		{Name: "headers over the limit", ServerName: "open.bank.test",
			Request: &manifest.TestRequest{Headers: map[string]string{"X-Big": big}},
			Expect:  manifest.Expect{Handshake: "accepted", Status: 431, OriginReached: ptr(false)}},
		{Name: "headers under the limit", ServerName: "open.bank.test",
			Request: &manifest.TestRequest{Headers: map[string]string{"X-Big": big[:server.DefaultMaxHeaderBytes/2]}},
			Expect:  manifest.Expect{Status: 200, OriginReached: ptr(true)}},
	}
	var r edgetest.Runner
	rep := r.Run(context.Background(), []edgetest.Run{{Suite: f.suite("serve", cases...), Target: e.Target()}})
	if !rep.OK() {
		var buf bytes.Buffer
		edgetest.WriteText(&buf, rep)
		t.Fatal(buf.String())
	}
}
