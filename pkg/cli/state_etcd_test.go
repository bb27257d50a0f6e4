package cli_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edgectl/edgectl/pkg/state"
	"github.com/edgectl/edgectl/pkg/state/etcdtest"
)

// TestEtcdHistoryRollback runs state history, state show --serial and state
// rollback against etcd: the history lives under the prefix, and a rollback
// is a new serial whose resources are the restored snapshot's.
func TestEtcdHistoryRollback(t *testing.T) {
	srv := etcdtest.Start(t, etcdtest.Options{})
	loc := srv.Location("edgectl/history")
	root := t.TempDir()
	env := map[string]string{state.EnvVar: loc, "EDGECTL_APPLIED_BY": "ci@runner"}
	for i, item := range []string{"10.0.1.0/24", "10.0.2.0/24", "10.0.3.0/24"} {
		dir := filepath.Join(root, item[:6])
		writeManifests(t, dir, item)
		if code, out, errOut := etcdRun(env, "apply", "-f", dir); code != 0 {
			t.Fatalf("apply %d: exit %d\n%s%s", i+1, code, out, errOut)
		}
	}
	code, out, errOut := etcdRun(env, "state", "history", "-o", "json")
	if code != 0 {
		t.Fatalf("state history: exit %d\n%s%s", code, out, errOut)
	}
	var rep struct {
		Store     string
		Serial    int64
		Snapshots []struct {
			Serial    int64
			AppliedBy string
			Changes   *state.ChangeCounts
			Current   bool
		}
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if rep.Store != loc || rep.Serial != 3 || len(rep.Snapshots) != 3 || !rep.Snapshots[0].Current ||
		rep.Snapshots[2].Serial != 1 || rep.Snapshots[1].AppliedBy != "ci@runner" || rep.Snapshots[2].Changes == nil || rep.Snapshots[2].Changes.Create != 4 {
		t.Errorf("state history -o json:\n%s", out)
	}

	code, out, errOut = etcdRun(env, "state", "show", "--serial", "1", "-o", "json")
	if code != 0 || !strings.Contains(out, `"10.0.1.0/24"`) {
		t.Errorf("state show --serial 1: exit %d\n%s%s", code, out, errOut)
	}

	code, out, errOut = etcdRun(env, "state", "rollback", "1")
	if code != 0 || !strings.Contains(out, "Rollback complete: serial 4 restores serial 1: 0 created, 2 updated, 0 deleted") {
		t.Fatalf("state rollback 1: exit %d\n%s%s", code, out, errOut)
	}
	st, err := state.Open(loc)
	if err != nil {
		t.Fatal(err)
	}
	defer st.(*state.EtcdStore).Close()
	h, err := st.(state.Historian).History(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != 4 || h[0].Serial != 4 || h[0].RollbackOf != 1 {
		t.Fatalf("history after the rollback: %d snapshots, newest serial %d rollbackOf %d", len(h), h[0].Serial, h[0].RollbackOf)
	}
	cur, old := mustJSON(t, h[0].Resources), mustJSON(t, h[3].Resources)
	if cur != old {
		t.Errorf("serial 4 does not hold serial 1's resources:\n%s\n%s", cur, old)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
