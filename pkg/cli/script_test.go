package cli_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/edgectl/edgectl/pkg/cli"
	"github.com/edgectl/edgectl/pkg/pki/pkitest"
)

// TestMain lets the test binary act as edgectl inside scripts and in the
// tests that start edgectl as a child process (found on $PATH). It runs
// cli.Main, as cmd/edgectl does, so that signals behave the same.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"edgectl": func() { os.Exit(cli.Main()) },
	})
}

// TestScripts runs every testdata/script/*.txtar: one behaviour of the CLI
// per script. $EXAMPLES is the repository's examples directory. Scripts can
// make certificates with gencerts. EDGECTL_UPDATE=1 rewrites the files that
// cmp compares stdout and stderr with.
func TestScripts(t *testing.T) {
	examples, err := filepath.Abs("../../examples")
	if err != nil {
		t.Fatal(err)
	}
	testscript.Run(t, testscript.Params{
		Dir: "../../testdata/script",
		Setup: func(env *testscript.Env) error {
			env.Setenv("EXAMPLES", examples)
			return nil
		},
		Cmds:          map[string]func(ts *testscript.TestScript, neg bool, args []string){"gencerts": cmdGencerts},
		UpdateScripts: os.Getenv("EDGECTL_UPDATE") == "1",
	})
}

// cmdGencerts writes a fresh test PKI into DIR: partner-ca.pem (a CA for
// client certificates), server.pem and server-key.pem (an edge certificate
// for the given hostnames, by default api.bank.example and
// portal.bank.example, issued by its own CA). Every run makes new keys, so
// running it again rotates the certificates.
//
//	gencerts DIR [HOSTNAME...]
func cmdGencerts(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("unsupported: ! gencerts")
	}
	if len(args) < 1 {
		ts.Fatalf("usage: gencerts DIR [HOSTNAME...]")
	}
	dir := ts.MkAbs(args[0])
	hosts := args[1:]
	if len(hosts) == 0 {
		hosts = []string{"api.bank.example", "portal.bank.example"}
	}
	ts.Check(os.MkdirAll(dir, 0o755))
	partners := pkitest.NewCA("partner root")
	ts.Check(os.WriteFile(filepath.Join(dir, "partner-ca.pem"), partners.CertPEM(), 0o644))
	edge := pkitest.NewCA("edge root")
	server := edge.IssueServer(hosts)
	ts.Check(os.WriteFile(filepath.Join(dir, "server.pem"), server.ChainPEM(), 0o644))
	ts.Check(os.WriteFile(filepath.Join(dir, "server-key.pem"), server.KeyPEM(), 0o600))
}
