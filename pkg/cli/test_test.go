package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edgectl/edgectl/pkg/cli"
)

func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = cli.Run(context.Background(), args, &cli.IO{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
	return code, out.String(), errOut.String()
}

// TestOpenBankingSuite runs the example's suite in-process against the
// example's manifests, as make test does: every case must pass.
func TestOpenBankingSuite(t *testing.T) {
	t.Parallel()
	junit := filepath.Join(t.TempDir(), "report.xml")
	code, out, errOut := runCLI(t, "test", "-f", "../../examples/open-banking/tests", "-f", "../../examples/open-banking", "--junit", junit)
	if code != cli.ExitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	if strings.Contains(out, "FAIL") || !strings.Contains(out, " passed, 0 failed (") {
		t.Errorf("stdout:\n%s", out)
	}
	data, err := os.ReadFile(junit)
	if err != nil {
		t.Fatal(err)
	}
	var report struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
		Errors   int `xml:"errors,attr"`
	}
	if err := xml.Unmarshal(data, &report); err != nil || report.Tests < 8 || report.Failures+report.Errors != 0 {
		t.Errorf("JUnit report %+v, %v:\n%s", report, err, data)
	}
}

// TestTestExitCodes covers the exit status of edgectl test and where its
// output goes.
func TestTestExitCodes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	certs, _ := filepath.Abs("../../examples/open-banking/certs")
	manifests, _ := filepath.Abs("../../examples/open-banking")
	suite := func(name, body string) string {
		p := filepath.Join(dir, name+".yaml")
		content := "apiVersion: edgectl.dev/v1\nkind: TestSuite\nmetadata: {name: " + name + "}\nspec:\n  caFile: " + filepath.Join(certs, "root.pem") + "\n  cases:\n" + body
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	wrong := suite("wrong", `    - name: portal without a certificate
      serverName: portal.bank.example
      expect: {status: 200}
    - name: unknown name
      serverName: nobody.bank.example
      expect: {handshake: rejected, alert: unrecognized_name}
`)
	origin := suite("origin", `    - name: identity
      serverName: api.bank.example
      expect: {originHeaders: {Client-Verify: SUCCESS}}
`)
	invalid := suite("invalid", `    - name: bad
      serverName: api.bank.example
      expect: {handshake: maybe}
`)
	only := []string{"-f", filepath.Join(manifests, "application.yaml"), "-f", filepath.Join(manifests, "certificates.yaml"),
		"-f", filepath.Join(manifests, "domains.yaml"), "-f", filepath.Join(manifests, "firewall.yaml"), "-f", filepath.Join(manifests, "networks.yaml")}

	tests := map[string]struct {
		args       []string
		code       int
		stdout     []string
		stderr     []string
		jsonOutput bool
	}{
		"a wrong expectation names the case": {args: append([]string{"test", "-f", wrong}, only...), code: 1,
			stdout: []string{"FAIL  wrong/portal without a certificate (", "      status: expected 200, got 403\n", "PASS  wrong/unknown name (", "1 passed, 1 failed ("}},
		"run selects the passing case": {args: append([]string{"test", "-f", wrong, "--run", "unknown"}, only...), code: 0,
			stdout: []string{"PASS  wrong/unknown name", "1 passed, 0 failed"}},
		"run matching nothing": {args: append([]string{"test", "-f", wrong, "--run", "^nothing$"}, only...), code: 1,
			stderr: []string{`edgectl: no test case matches --run "^nothing$"`}},
		"json": {args: append([]string{"test", "-f", wrong, "-o", "json"}, only...), code: 1, jsonOutput: true},
		"origin expectations against a target": {args: []string{"test", "-f", origin, "--target", "127.0.0.1:1"}, code: 1,
			stderr: []string{"edgectl: origin/identity: originHeaders cannot be checked against a running edge (127.0.0.1:1)"}},
		"unreachable target":   {args: []string{"test", "-f", wrong, "--target", unusedAddr(t)}, code: 1, stdout: []string{"error: cannot connect to the edge at", "0 passed, 2 failed"}},
		"invalid suite":        {args: []string{"test", "-f", invalid}, code: 1, stderr: []string{"invalid.yaml:9:16: error: spec.cases[0].expect.handshake", "invalid: 1 error"}},
		"no suite":             {args: append([]string{"test"}, only...), code: 1, stderr: []string{"edgectl: no TestSuite in the files given"}},
		"no manifests":         {args: []string{"test", "-f", wrong}, code: 1, stderr: []string{"edgectl: the manifests declare no Domain"}},
		"unknown output":       {args: []string{"test", "-f", wrong, "-o", "yaml"}, code: 1, stderr: []string{`unknown output format "yaml"`}},
		"invalid run regexp":   {args: []string{"test", "-f", wrong, "--run", "("}, code: 1, stderr: []string{"edgectl: --run: error parsing regexp"}},
		"suite given twice":    {args: append([]string{"test", "-f", wrong, "-f", dir, "--run", "wrong/"}, only...), code: 1, stdout: []string{"1 passed, 1 failed"}},
		"filename is required": {args: []string{"test"}, code: 1, stderr: []string{`required flag(s) "filename" not set`}},
	}
	// "suite given twice" reads dir, which also holds the other suites; select
	// only the wrong suite's cases, and drop the invalid one for it.
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if name == "suite given twice" {
				moved := invalid + ".off"
				if err := os.Rename(invalid, moved); err != nil {
					t.Fatal(err)
				}
				defer os.Rename(moved, invalid)
			}
			code, out, errOut := runCLI(t, tc.args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, out, errOut)
			}
			for _, s := range tc.stdout {
				if !strings.Contains(out, s) {
					t.Errorf("stdout lacks %q:\n%s", s, out)
				}
			}
			for _, s := range tc.stderr {
				if !strings.Contains(errOut, s) {
					t.Errorf("stderr lacks %q:\n%s", s, errOut)
				}
			}
			if tc.jsonOutput {
				var rep struct {
					Summary struct{ Total, Passed, Failed int }
					Suites  []struct {
						Cases []struct {
							FullName string
							Passed   bool
							Failures []struct{ Field, Expected, Got string }
						}
					}
				}
				if err := json.Unmarshal([]byte(out), &rep); err != nil {
					t.Fatalf("stdout is not JSON: %v\n%s", err, out)
				}
				if rep.Summary.Total != 2 || rep.Summary.Failed != 1 || rep.Suites[0].Cases[0].Failures[0].Got != "403" {
					t.Errorf("JSON report: %+v", rep)
				}
			}
		})
	}
}

func unusedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
