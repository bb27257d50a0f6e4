package cli_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/edgectl/edgectl/pkg/cli"
	"github.com/edgectl/edgectl/pkg/pki/pkitest"
	"github.com/edgectl/edgectl/pkg/state"
)

// writeManifests writes a valid manifest set into dir whose network list
// holds item.
func writeManifests(t *testing.T, dir, item string) {
	t.Helper()
	ca := pkitest.NewCA("edge root")
	server := ca.IssueServer([]string{"api.bank.example"})
	files := map[string]string{
		"server.pem":     string(server.ChainPEM()),
		"server-key.pem": string(server.KeyPEM()),
		"all.yaml": fmt.Sprintf(`apiVersion: edgectl.dev/v1
kind: Certificate
metadata: {name: edge}
spec: {certificateFile: server.pem, privateKeyFile: server-key.pem}
---
apiVersion: edgectl.dev/v1
kind: NetworkList
metadata: {name: blocked}
spec: {type: ipCidr, items: [%q]}
---
apiVersion: edgectl.dev/v1
kind: Application
metadata: {name: app}
spec: {origin: {url: "http://127.0.0.1:9000"}}
---
apiVersion: edgectl.dev/v1
kind: Domain
metadata: {name: api}
spec: {hostnames: [api.bank.example], certificate: edge, application: app}
`, item),
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// TestConcurrentAppliesNeverCorruptTheState runs applies of different
// manifests at once against one state file. Each either completes or is
// refused because another holds the lock; the state is always a valid
// snapshot whose serial counts the completed applies.
func TestConcurrentAppliesNeverCorruptTheState(t *testing.T) {
	root := t.TempDir()
	statePath := filepath.Join(root, "state", "state.json")
	const appliers = 8
	for i := 0; i < appliers; i++ {
		writeManifests(t, filepath.Join(root, fmt.Sprint(i)), fmt.Sprintf("10.0.%d.0/24", i))
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	completed := 0
	for round := 0; round < 3; round++ {
		for i := 0; i < appliers; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				var out, errOut bytes.Buffer
				code := cli.Run(context.Background(),
					[]string{"apply", "-f", filepath.Join(root, fmt.Sprint(i)), "--state", statePath},
					&cli.IO{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
				switch {
				case code == 0 && strings.Contains(out.String(), "Apply complete: nothing to change"):
				case code == 0:
					mu.Lock()
					completed++
					mu.Unlock()
				case strings.HasPrefix(errOut.String(), "edgectl: state is locked by pid "):
				default:
					t.Errorf("apply %d: exit %d\n%s%s", i, code, out.String(), errOut.String())
				}
			}(i)
		}
		wg.Wait()
	}
	data, err := os.ReadFile(statePath)
	if err != nil {
		t.Fatal(err)
	}
	s, err := state.DecodeSnapshot(data)
	if err != nil {
		t.Fatalf("state after concurrent applies: %v\n%s", err, data)
	}
	if completed == 0 || s.Serial != int64(completed) {
		t.Errorf("serial %d after %d completed applies", s.Serial, completed)
	}
	if _, err := os.Stat(statePath + ".lock"); !os.IsNotExist(err) {
		t.Error("lock file left behind")
	}
	t.Logf("%d applies completed", completed)
}
