package cli_test

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// runDemo runs examples/open-banking/demo.sh (what make demo runs) with
// every port moved and its files in a temporary DEMO_DIR, with edgectl
// being the wrapper script wrapper (the test binary acting as edgectl,
// found on $PATH, when empty).
func runDemo(t *testing.T, wrapper string) (string, error) {
	t.Helper()
	if testing.Short() {
		t.Skip("the demo builds the echo origin and runs for seconds")
	}
	for _, tool := range []string{"curl", "openssl", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is not installed (make demo-tools): %v", tool, err)
			}
			t.Skipf("%s is not installed (make demo-tools): %v", tool, err)
		}
	}
	edgectl, err := exec.LookPath("edgectl")
	if err != nil {
		t.Fatal(err)
	}
	if wrapper != "" {
		path := filepath.Join(t.TempDir(), "edgectl-wrapper")
		if err := os.WriteFile(path, []byte("#!/bin/sh\nEDGECTL_REAL="+edgectl+"\n"+wrapper), 0o755); err != nil {
			t.Fatal(err)
		}
		edgectl = path
	}
	cmd := exec.Command("bash", "../../examples/open-banking/demo.sh")
	cmd.Env = append(os.Environ(),
		"EDGECTL="+edgectl,
		"DEMO_DIR="+filepath.Join(t.TempDir(), "demo"),
		"DEMO_EDGE_PORT="+strconv.Itoa(freePort(t)),
		"DEMO_ADMIN_PORT="+strconv.Itoa(freePort(t)),
		"DEMO_ORIGIN_PORT="+strconv.Itoa(freePort(t)),
	)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestDemoMovedPorts runs the whole demo on ports other than its defaults.
func TestDemoMovedPorts(t *testing.T) {
	out, err := runDemo(t, "")
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out)
	}
	for _, want := range []string{"==> 10. Prove it with the example's test suite", "8 passed, 0 failed", "using a copy of the example"} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
}

// TestDemoRefusesAnotherEdge: when edgectl serve cannot bind its port (taken
// by another process between the demo's check and the bind), the demo stops
// before any step that would talk to the other process.
func TestDemoRefusesAnotherEdge(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	// serve is given the taken port last (the last --listen wins), as if
	// another process had bound the demo's port first.
	wrapper := `if [ "$1" = serve ]; then exec "$EDGECTL_REAL" "$@" --listen ` + taken.Addr().String() + `; fi
exec "$EDGECTL_REAL" "$@"
`
	out, err := runDemo(t, wrapper)
	if err == nil {
		t.Fatalf("the demo went on with an edge that could not bind:\n%s", out)
	}
	if !strings.Contains(out, "demo failed: edgectl serve exited before it was ready") || strings.Contains(out, "==> 5.") {
		t.Errorf("demo output:\n%s", out)
	}
}
