package cli_test

import (
	"net"
	"strings"
	"testing"
	"time"
)

// TestServeMaxConnections: with --max-connections 1, a connection held
// open (its handshake not started) makes curl's connection be closed
// before the handshake, counted on /metrics; once it closes, curl is
// served again.
func TestServeMaxConnections(t *testing.T) {
	t.Parallel()
	needTool(t, "curl")
	e := newServeEnv(t)
	e.apply(t)
	p := e.serveWith(t, "", "--max-connections", "1", "--handshake-timeout", "1m")
	held, err := net.Dial("tcp", p.edge)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	p.waitFor(t, "the held connection counted", "/metrics", "\nedgectl_client_connections 1\n")
	args := []string{"-o", "/dev/null", "-w", "%{http_code}", "--cert", e.partner, "--key", e.partnerKey}
	if out, err := e.curl(t, p, "api.bank.test", args...); err == nil {
		t.Fatalf("curl over the limit was served: %s", out)
	}
	p.waitFor(t, "the refusal counted", "/metrics", "\nedgectl_client_connections_refused_total 1\n")
	// The refusal is counted before it is logged: wait for the line.
	for logged := time.Now().Add(5 * time.Second); !strings.Contains(p.stderr.String(), "client connection limit reached"); {
		if time.Now().After(logged) {
			t.Fatalf("the limit was not logged:\n%s", p.stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	held.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		out, err := e.curl(t, p, "api.bank.test", args...)
		if err == nil && out == "200" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("curl not served after the held connection closed: %v %s", err, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
