package state

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/edgectl/edgectl/pkg/state/etcdtest"
)

type historyStore interface {
	Store
	Historian
}

func serialsOf(h []*Snapshot) []int64 {
	var out []int64
	for _, s := range h {
		out = append(out, s.Serial)
	}
	return out
}

// testHistory is what both stores promise about their history, with a
// limit of 5 snapshots.
func testHistory(t *testing.T, st historyStore) {
	h, err := st.History(ctx)
	if h != nil || err != nil {
		t.Fatalf("History of an empty store = %v, %v; want nil, nil", h, err)
	}
	var written []*Snapshot
	for i := 0; i < 8; i++ {
		written = append(written, apply(t, st, i))
	}
	h, err = st.History(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]int64{8, 7, 6, 5, 4}, serialsOf(h)); diff != "" {
		t.Fatalf("history serials (-want +got):\n%s", diff)
	}
	// Each kept snapshot is the one written, resources and all.
	for _, s := range h {
		if diff := cmp.Diff(written[s.Serial-1], s); diff != "" {
			t.Errorf("serial %d (-want +got):\n%s", s.Serial, diff)
		}
	}
	for serial, want := range map[int64]string{
		3:  "serial 3 is not in the history of " + st.String() + " any more: it keeps serials 4 to 8",
		9:  "serial 9 is not in the history of " + st.String() + ": the current serial is 8",
		0:  "serial 0 is not in the history",
		-1: "serial -1 is not in the history",
	} {
		if _, err := FindSerial(h, serial, st); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("FindSerial(%d): err = %v, want %q", serial, err, want)
		}
	}
	if s, err := FindSerial(h, 6, st); err != nil || s.Serial != 6 {
		t.Errorf("FindSerial(6) = %v, %v", s, err)
	}

	// A refused (stale) write adds nothing to the history.
	prior := h[0]
	err = st.Write(ctx, Next(&Snapshot{Lineage: prior.Lineage, Serial: 6}, testResources(1), time.Now()), prior.Lineage, 6)
	if !errors.Is(err, ErrStale) {
		t.Fatalf("stale write: err = %v", err)
	}
	h, err = st.History(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]int64{8, 7, 6, 5, 4}, serialsOf(h)); diff != "" {
		t.Errorf("history after a refused write (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(written[6], h[1]); diff != "" {
		t.Errorf("serial 7 after a refused write for serial 7 (-want +got):\n%s", diff)
	}
}

func TestFileHistory(t *testing.T) {
	st := newStore(t)
	st.HistoryLimit = 5
	testHistory(t, st)
	entries, err := os.ReadDir(st.HistoryDir())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	want := []string{"00000000000000000004.json", "00000000000000000005.json", "00000000000000000006.json", "00000000000000000007.json", "00000000000000000008.json"}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("files in %s (-want +got):\n%s", st.HistoryDir(), diff)
	}
}

// TestFileHistoryFailedStateWrite: the history file is written before the
// state, and the state's rename commits both. When the state write fails,
// the new history file is not part of the history, and the next write
// replaces it.
func TestFileHistoryFailedStateWrite(t *testing.T) {
	st := newStore(t)
	apply(t, st, 1)
	st.rename = func(oldpath, newpath string) error {
		if strings.HasSuffix(newpath, "state.json") {
			return errors.New("injected failure")
		}
		return os.Rename(oldpath, newpath)
	}
	prior, _ := st.Read(ctx)
	if err := st.Write(ctx, Next(prior, testResources(3), time.Now()), prior.Lineage, prior.Serial); err == nil {
		t.Fatal("write succeeded")
	}
	if _, err := os.Stat(st.historyPath(2)); err != nil {
		t.Fatalf("the history file of the failed write: %v (this test expects it written before the state)", err)
	}
	h, err := st.History(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]int64{1}, serialsOf(h)); diff != "" {
		t.Errorf("history after a failed state write (-want +got):\n%s", diff)
	}
	st.rename = nil
	second := apply(t, st, 2)
	h, _ = st.History(ctx)
	if diff := cmp.Diff(second, h[0]); diff != "" || len(h) != 2 {
		t.Errorf("after the next write: %d snapshots; newest (-want +got):\n%s", len(h), diff)
	}
	got, err := DecodeSnapshot(readFile(t, st.historyPath(2)))
	if err != nil || got.AppliedAt != second.AppliedAt || len(got.Resources) != len(second.Resources) {
		t.Errorf("history file of serial 2 = %v, %v; want the second write's", got, err)
	}
}

// TestFileHistoryNewLineage: after the state file is removed, the next
// apply starts a new lineage; the old lineage's snapshots are not part of
// its history, and the write drops those above its serial.
func TestFileHistoryNewLineage(t *testing.T) {
	st := newStore(t)
	apply(t, st, 1)
	apply(t, st, 2)
	apply(t, st, 3)
	if err := os.Remove(st.Path()); err != nil {
		t.Fatal(err)
	}
	fresh := apply(t, st, 4)
	h, err := st.History(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != 1 || h[0].Lineage != fresh.Lineage {
		t.Errorf("history of the new lineage = %v", serialsOf(h))
	}
	for _, n := range []int64{2, 3} {
		if _, err := os.Stat(st.historyPath(n)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("old lineage's serial %d still kept: %v", n, err)
		}
	}
}

// TestFileHistoryBeforeHistory: a state written before edgectl kept a
// history has itself as its history.
func TestFileHistoryBeforeHistory(t *testing.T) {
	st := newStore(t)
	cur := apply(t, st, 1)
	if err := os.RemoveAll(st.HistoryDir()); err != nil {
		t.Fatal(err)
	}
	h, err := st.History(ctx)
	if err != nil || len(h) != 1 || h[0].Serial != cur.Serial {
		t.Errorf("History = %v, %v", serialsOf(h), err)
	}
}

func TestEtcdHistory(t *testing.T) {
	srv := etcdtest.Start(t, etcdtest.Options{})
	raw := rawClient(t, srv)
	st := newEtcdStore(t, srv, "history", EtcdOptions{HistoryLimit: 5})
	testHistory(t, st)
	resp, err := raw.Get(ctx, "/history/history/", clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, kv := range resp.Kvs {
		keys = append(keys, string(kv.Key))
	}
	want := []string{"/history/history/00000000000000000004", "/history/history/00000000000000000005", "/history/history/00000000000000000006", "/history/history/00000000000000000007", "/history/history/00000000000000000008"}
	if diff := cmp.Diff(want, keys); diff != "" {
		t.Errorf("history keys (-want +got):\n%s", diff)
	}
	// The history key and the state key are one revision: one transaction.
	state, _ := raw.Get(ctx, "/history/state")
	last, _ := raw.Get(ctx, "/history/history/00000000000000000008")
	if state.Kvs[0].ModRevision != last.Kvs[0].ModRevision {
		t.Errorf("state written at revision %d, its history key at %d", state.Kvs[0].ModRevision, last.Kvs[0].ModRevision)
	}

	// A new lineage in an emptied store: the old lineage's keys above the
	// new serial are dropped by the first write, and never listed.
	if _, err := raw.Delete(ctx, "/history/state"); err != nil {
		t.Fatal(err)
	}
	fresh := newEtcdStore(t, srv, "history", EtcdOptions{HistoryLimit: 5})
	first := apply(t, fresh, 1)
	h, err := fresh.History(ctx)
	if err != nil || len(h) != 1 || h[0].Lineage != first.Lineage {
		t.Errorf("history of the new lineage = %v, %v", serialsOf(h), err)
	}
	resp, _ = raw.Get(ctx, "/history/history/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if resp.Count != 1 {
		t.Errorf("%d history keys after the new lineage's first write, want 1", resp.Count)
	}
}
