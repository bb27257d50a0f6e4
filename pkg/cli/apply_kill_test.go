package cli_test

import (
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/edgectl/edgectl/pkg/manifest"
	"github.com/edgectl/edgectl/pkg/state"
)

// TestApplyKilledLeavesOldOrNewState kills real apply processes at random
// moments: the state file is always a whole snapshot, either the one
// before the apply or the one it was writing, and a later apply recovers
// the lock the killed process left.
func TestApplyKilledLeavesOldOrNewState(t *testing.T) {
	if testing.Short() {
		t.Skip("starts many processes")
	}
	dir := t.TempDir()
	stateFile := filepath.Join(dir, "state.json")
	items := map[string]string{"a": "192.0.2.1", "b": "192.0.2.2"}
	for name, item := range items {
		writeManifests(t, filepath.Join(dir, name), item)
	}
	apply := func(set string) *exec.Cmd {
		cmd := exec.Command("edgectl", "apply", "-f", filepath.Join(dir, set), "--state", stateFile)
		cmd.Dir = dir
		return cmd
	}
	read := func() (serial int64, item string) {
		t.Helper()
		data, err := os.ReadFile(stateFile)
		if err != nil {
			t.Fatalf("state unreadable: %v", err)
		}
		snap, err := state.DecodeSnapshot(data)
		if err != nil {
			t.Fatalf("state is not a whole snapshot: %v\n%.300s", err, data)
		}
		nl := snap.Find(manifest.KindNetworkList, "blocked")
		if nl == nil {
			t.Fatalf("serial %d: the network list is missing", snap.Serial)
		}
		return snap.Serial, nl.Spec.(*manifest.NetworkListSpec).Items[0]
	}
	if out, err := apply("a").CombinedOutput(); err != nil {
		t.Fatalf("first apply: %v\n%s", err, out)
	}
	serial, item := read()
	killed, completed := 0, 0
	for i := 0; i < 40; i++ {
		set := []string{"a", "b"}[i%2]
		cmd := apply(set)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(rand.IntN(80)) * time.Millisecond)
		cmd.Process.Kill()
		if err := cmd.Wait(); err != nil {
			killed++
		} else {
			completed++
		}
		s, it := read()
		switch {
		case s == serial && it == item:
			// The old state, untouched.
		case s == serial+1 && it == items[set]:
			// The new state, whole.
		default:
			t.Fatalf("after apply %d of %q: serial %d item %s; before: serial %d item %s", i, set, s, it, serial, item)
		}
		serial, item = s, it
	}
	// The lock a killed apply may have left is recovered (dead pid, same host).
	if out, err := apply("b").CombinedOutput(); err != nil {
		t.Fatalf("apply after the kills: %v\n%s", err, out)
	}
	t.Logf("%d applies killed, %d completed; state always whole", killed, completed)
}
