package cli_test

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/edgectl/edgectl/pkg/cli"
	"github.com/edgectl/edgectl/pkg/state"
	"github.com/edgectl/edgectl/pkg/state/etcdtest"
)

// etcdRun runs edgectl in-process with env as its whole environment.
func etcdRun(env map[string]string, args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = cli.Run(context.Background(), args, &cli.IO{
		In: strings.NewReader(""), Out: &out, ErrOut: &errOut,
		Getenv: func(k string) string { return env[k] },
	})
	return code, out.String(), errOut.String()
}

func etcdSerial(t *testing.T, location string) int64 {
	t.Helper()
	st, err := state.Open(location)
	if err != nil {
		t.Fatal(err)
	}
	defer st.(*state.EtcdStore).Close()
	s, err := st.Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	_, serial := s.Version()
	return serial
}

// TestEtcdPlanApplyShow runs plan, apply -f, apply FILE and state show
// against etcd, chosen by --state or EDGECTL_STATE.
func TestEtcdPlanApplyShow(t *testing.T) {
	srv := etcdtest.Start(t, etcdtest.Options{})
	loc := srv.Location("edgectl/cli")
	root := t.TempDir()
	v1, v2, v3 := filepath.Join(root, "v1"), filepath.Join(root, "v2"), filepath.Join(root, "v3")
	writeManifests(t, v1, "10.0.1.0/24")
	writeManifests(t, v2, "10.0.2.0/24")
	writeManifests(t, v3, "10.0.3.0/24")
	env := map[string]string{state.EnvVar: loc}

	code, out, errOut := etcdRun(env, "state", "show")
	if code != 0 || out != "The state "+loc+" is empty: nothing has been applied yet.\n" {
		t.Fatalf("state show of an empty store: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut = etcdRun(env, "plan", "-f", v1, "--detailed-exitcode"); code != cli.ExitChanges {
		t.Fatalf("plan: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut = etcdRun(nil, "apply", "-f", v1, "--state", loc); code != 0 || !strings.Contains(out, "(serial 1)") {
		t.Fatalf("apply -f: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut = etcdRun(env, "plan", "-f", v1, "--detailed-exitcode"); code != 0 {
		t.Fatalf("plan after apply: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut = etcdRun(env, "state", "show"); code != 0 || !strings.Contains(out, "serial:    1\n") || !strings.Contains(out, "NetworkList/blocked") {
		t.Fatalf("state show: exit %d\n%s%s", code, out, errOut)
	}

	// A saved plan applies exactly; a stale one is refused.
	p2, p3 := filepath.Join(root, "p2.json"), filepath.Join(root, "p3.json")
	if code, out, errOut = etcdRun(env, "plan", "-f", v2, "--out", p2); code != 0 {
		t.Fatalf("plan --out: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut = etcdRun(env, "plan", "-f", v3, "--out", p3); code != 0 {
		t.Fatalf("plan --out: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut = etcdRun(env, "apply", p2); code != 0 || !strings.Contains(out, "(serial 2)") {
		t.Fatalf("apply FILE: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = etcdRun(env, "apply", p3)
	if code != 1 || !strings.HasPrefix(errOut, "edgectl: plan is stale: it was made against serial 1 of lineage ") || !strings.Contains(errOut, "but the state is now serial 2") {
		t.Fatalf("stale apply FILE: exit %d\n%s%s", code, out, errOut)
	}
	if got := etcdSerial(t, loc); got != 2 {
		t.Errorf("serial %d after a refused stale plan, want 2", got)
	}

	// An unreachable etcd is named.
	code, _, errOut = etcdRun(nil, "state", "show", "--state", "etcd://127.0.0.1:1/x")
	if code != 1 || !strings.HasPrefix(errOut, "edgectl: reading state: cannot reach etcd at 127.0.0.1:1: dial tcp 127.0.0.1:1: connect: connection refused") {
		t.Errorf("unreachable etcd: exit %d\n%s", code, errOut)
	}
}

// TestEtcdConcurrentApplies runs applies of different manifests at once
// against one etcd state: each completes or is refused (lock held, or plan
// stale), and the state is always a valid snapshot whose serial counts the
// completed applies.
func TestEtcdConcurrentApplies(t *testing.T) {
	srv := etcdtest.Start(t, etcdtest.Options{})
	loc := srv.Location("edgectl/concurrent")
	root := t.TempDir()
	const appliers = 6
	for i := 0; i < appliers; i++ {
		writeManifests(t, filepath.Join(root, fmt.Sprint(i)), fmt.Sprintf("10.0.%d.0/24", i))
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	completed, refused := 0, 0
	for round := 0; round < 3; round++ {
		for i := 0; i < appliers; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				code, out, errOut := etcdRun(nil, "apply", "-f", filepath.Join(root, fmt.Sprint(i)), "--state", loc)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case code == 0 && strings.Contains(out, "Apply complete: nothing to change"):
				case code == 0:
					completed++
				case strings.HasPrefix(errOut, "edgectl: state is locked by pid "), strings.HasPrefix(errOut, "edgectl: plan is stale"):
					refused++
				default:
					t.Errorf("apply %d: exit %d\n%s%s", i, code, out, errOut)
				}
			}(i)
		}
		wg.Wait()
	}
	if got := etcdSerial(t, loc); completed == 0 || got != int64(completed) {
		t.Errorf("serial %d after %d completed applies", got, completed)
	}
	t.Logf("%d applies completed, %d refused", completed, refused)
}

// TestEtcdTLSFlags reaches a TLS etcd with --etcd-cacert, --etcd-cert and
// --etcd-key.
func TestEtcdTLSFlags(t *testing.T) {
	srv := etcdtest.Start(t, etcdtest.Options{TLS: true})
	loc := srv.Location("edgectl/tls")
	dir := filepath.Join(t.TempDir(), "m")
	writeManifests(t, dir, "10.0.0.0/24")
	tlsFlags := []string{"--etcd-cacert", srv.CACert, "--etcd-cert", srv.ClientCert, "--etcd-key", srv.ClientKey}
	if code, out, errOut := etcdRun(nil, append([]string{"apply", "-f", dir, "--state", loc}, tlsFlags...)...); code != 0 {
		t.Fatalf("apply: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut := etcdRun(nil, append([]string{"plan", "-f", dir, "--state", loc, "--detailed-exitcode"}, tlsFlags...)...); code != 0 {
		t.Fatalf("plan: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut := etcdRun(nil, append([]string{"state", "show", "--state", loc}, tlsFlags...)...); code != 0 || !strings.Contains(out, "serial:    1\n") {
		t.Fatalf("state show: exit %d\n%s%s", code, out, errOut)
	}
	query := fmt.Sprintf("?cacert=%s&cert=%s&key=%s", srv.CACert, srv.ClientCert, srv.ClientKey)
	if code, out, errOut := etcdRun(map[string]string{state.EnvVar: loc + query}, "state", "show"); code != 0 || !strings.Contains(out, "serial:    1\n") {
		t.Fatalf("state show with query parameters: exit %d\n%s%s", code, out, errOut)
	}
}
