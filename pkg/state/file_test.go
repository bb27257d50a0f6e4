package state

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/edgectl/edgectl/pkg/manifest"
)

var ctx = context.Background()

const fakeCert = "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n"

func testResources(n int) []Resource {
	rs := []Resource{{
		Kind: manifest.KindCertificate, Name: "edge",
		Spec: &manifest.CertificateSpec{Certificate: fakeCert, PrivateKeyFile: "/etc/edgectl/edge-key.pem", PublicKeyFingerprint: "sha256:00ff"},
	}}
	for i := 0; i < n; i++ {
		rs = append(rs, Resource{
			Kind: manifest.KindDomain, Name: fmt.Sprintf("d%d", i),
			Spec: &manifest.DomainSpec{Hostnames: []string{fmt.Sprintf("d%d.example.com", i)}, Certificate: "edge", Application: "app"},
		})
	}
	return rs
}

func newStore(t *testing.T) *FileStore {
	t.Helper()
	return NewFileStore(filepath.Join(t.TempDir(), ".edgectl", "state.json"))
}

// apply writes the next snapshot after the stored one.
func apply(t *testing.T, s Store, n int) *Snapshot {
	t.Helper()
	prior, err := s.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	next := Next(prior, testResources(n), time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
	lineage, serial := prior.Version()
	if err := s.Write(ctx, next, lineage, serial); err != nil {
		t.Fatal(err)
	}
	return next
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestReadEmptyStore(t *testing.T) {
	s, err := newStore(t).Read(ctx)
	if s != nil || err != nil {
		t.Fatalf("Read of an empty store = %v, %v; want nil, nil", s, err)
	}
}

func TestWriteReadRoundTrip(t *testing.T) {
	st := newStore(t)
	want := apply(t, st, 2)
	got, err := st.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("read back (-want +got):\n%s", diff)
	}
	if got.Serial != 1 || len(got.Lineage) != 36 {
		t.Errorf("first snapshot: serial %d lineage %q; want serial 1 and a UUID-like lineage", got.Serial, got.Lineage)
	}
	entries, _ := os.ReadDir(filepath.Dir(st.Path()))
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if diff := cmp.Diff([]string{"state.json", "state.json.history"}, names); diff != "" {
		t.Errorf("files left next to the state (no temp file, no lock) (-want +got):\n%s", diff)
	}
	entries, _ = os.ReadDir(st.HistoryDir())
	names = nil
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if diff := cmp.Diff([]string{"00000000000000000001.json"}, names); diff != "" {
		t.Errorf("files in the history (no temp file) (-want +got):\n%s", diff)
	}
}

func TestBackupKeepsPreviousSnapshot(t *testing.T) {
	st := newStore(t)
	apply(t, st, 1)
	first := readFile(t, st.Path())
	second := apply(t, st, 2)
	if got := readFile(t, st.BackupPath()); !bytes.Equal(got, first) {
		t.Errorf("backup is not the previous snapshot:\n%s", got)
	}
	if second.Serial != 2 {
		t.Errorf("serial = %d, want 2", second.Serial)
	}
}

func TestNoPrivateKeyMaterial(t *testing.T) {
	st := newStore(t)
	apply(t, st, 3)
	if data := readFile(t, st.Path()); bytes.Contains(data, []byte("PRIVATE KEY")) {
		t.Fatalf("state holds private-key material:\n%s", data)
	}
	// A snapshot that would hold a key is refused and nothing is written.
	before := readFile(t, st.Path())
	prior, _ := st.Read(ctx)
	bad := Next(prior, []Resource{{Kind: manifest.KindCertificate, Name: "leak", Spec: &manifest.CertificateSpec{
		Certificate: fakeCert + "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n"}}}, time.Now())
	err := st.Write(ctx, bad, prior.Lineage, prior.Serial)
	if err == nil || !strings.Contains(err.Error(), "private-key material") {
		t.Fatalf("Write of a snapshot with a key: err = %v", err)
	}
	if !bytes.Equal(before, readFile(t, st.Path())) {
		t.Error("state changed after a refused write")
	}
}

func TestStaleWriteRefused(t *testing.T) {
	st := newStore(t)
	first := apply(t, st, 1)
	before := readFile(t, st.Path())
	tests := map[string]struct {
		lineage string
		serial  int64
		next    *Snapshot
		want    string
	}{
		"plan made against an empty store": {"", 0, Next(nil, testResources(1), time.Now()),
			"plan is stale: it was made against an empty state, but the state is now serial 1 of lineage " + first.Lineage + "; make a new plan"},
		"serial moved": {first.Lineage, 0, &Snapshot{FormatVersion: FormatVersion, Lineage: first.Lineage, Serial: 1},
			"plan is stale: it was made against serial 0 of lineage " + first.Lineage},
		"other lineage": {"other", 1, &Snapshot{FormatVersion: FormatVersion, Lineage: "other", Serial: 2},
			"plan is stale: it was made against serial 1 of lineage other"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := st.Write(ctx, tc.next, tc.lineage, tc.serial)
			if !errors.Is(err, ErrStale) || !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("err = %v\nwant prefix %s", err, tc.want)
			}
			if !bytes.Equal(before, readFile(t, st.Path())) {
				t.Error("state changed after a stale write")
			}
		})
	}
}

func TestWriteChecksHistory(t *testing.T) {
	st := newStore(t)
	tests := map[string]struct {
		next *Snapshot
		want string
	}{
		"nil":            {nil, "no snapshot"},
		"format version": {&Snapshot{FormatVersion: 9, Lineage: "l", Serial: 1}, "format version 9"},
		"no lineage":     {&Snapshot{FormatVersion: FormatVersion, Serial: 1}, "no lineage"},
		"serial skips":   {&Snapshot{FormatVersion: FormatVersion, Lineage: "l", Serial: 3}, "serial 3 does not follow serial 0"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := st.Write(ctx, tc.next, "", 0)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to contain %q", err, tc.want)
			}
			if _, err := os.Stat(st.Path()); !os.IsNotExist(err) {
				t.Error("a state file was written")
			}
		})
	}
}

func TestUnreadableStateIsNeverOverwritten(t *testing.T) {
	tests := map[string]struct {
		content string
		want    string
	}{
		"bad JSON":        {`{"formatVersion": 1, "lineage": `, "not valid JSON"},
		"empty":           {"", "the file is empty"},
		"foreign JSON":    {`{"name": "my-app", "version": "1.0.0"}`, "not an edgectl state (it has no formatVersion)"},
		"JSON array":      {`[1, 2]`, "not an edgectl state (a state is a JSON object)"},
		"future format":   {`{"formatVersion": 2, "lineage": "x", "serial": 4}`, "written by a newer edgectl (format version 2; this build reads version 1)"},
		"format zero":     {`{"formatVersion": 0}`, "unknown format version 0"},
		"unknown field":   {`{"formatVersion": 1, "lineage": "x", "serial": 1, "extra": true}`, `unknown field "extra"`},
		"unknown kind":    {`{"formatVersion": 1, "lineage": "x", "serial": 1, "resources": [{"kind": "Gizmo", "name": "a", "spec": {}}]}`, `unknown kind "Gizmo"`},
		"no serial":       {`{"formatVersion": 1, "lineage": "x"}`, "no lineage or serial"},
		"string version":  {`{"formatVersion": "1"}`, `formatVersion is "1"`},
		"wrong spec type": {`{"formatVersion": 1, "lineage": "x", "serial": 1, "resources": [{"kind": "Domain", "name": "a", "spec": {"hostnames": "a"}}]}`, "resource Domain/a"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			st := newStore(t)
			if err := os.MkdirAll(filepath.Dir(st.Path()), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(st.Path(), []byte(tc.content), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := st.Read(ctx)
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Read: err = %v\nwant it to contain %q", err, tc.want)
			}
			if err != nil && !strings.Contains(err.Error(), "edgectl leaves it unchanged") {
				t.Errorf("Read: err = %v; want it to say the file is left unchanged", err)
			}
			err = st.Write(ctx, Next(nil, testResources(1), time.Now()), "", 0)
			if !errors.Is(err, ErrCorrupt) {
				t.Errorf("Write: err = %v, want ErrCorrupt", err)
			}
			if got := readFile(t, st.Path()); string(got) != tc.content {
				t.Errorf("state changed:\n%s", got)
			}
			if _, err := os.Stat(st.BackupPath()); !os.IsNotExist(err) {
				t.Error("a backup was written from an unreadable state")
			}
		})
	}
}

func TestLockHeldIsRefusedNamingTheHolder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	a, b := NewFileStore(path), NewFileStore(path)
	unlock, err := a.Lock(ctx, "edgectl apply")
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	want := fmt.Sprintf("state is locked by pid %d on host %s since ", os.Getpid(), host)
	_, err = b.Lock(ctx, "edgectl apply")
	if !errors.Is(err, ErrLocked) || !strings.HasPrefix(err.Error(), want) ||
		!strings.HasSuffix(err.Error(), "(edgectl apply); if that process is gone, remove "+path+".lock") {
		t.Fatalf("second Lock: err = %v\nwant %s... (edgectl apply); if that process is gone, remove %s.lock", err, want, path)
	}
	if err := b.Write(ctx, Next(nil, testResources(0), time.Now()), "", 0); !errors.Is(err, ErrLocked) {
		t.Fatalf("Write while another store holds the lock: err = %v, want ErrLocked", err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatal("state written while locked")
	}
	// The holder itself writes under its lock.
	if err := a.Write(ctx, Next(nil, testResources(0), time.Now()), "", 0); err != nil {
		t.Fatalf("Write by the holder: %v", err)
	}
	if err := unlock(); err != nil {
		t.Fatal(err)
	}
	if err := unlock(); err != nil {
		t.Fatalf("second unlock: %v", err)
	}
	unlockB, err := b.Lock(ctx, "edgectl apply")
	if err != nil {
		t.Fatalf("Lock after release: %v", err)
	}
	if err := unlockB(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path + ".lock"); !os.IsNotExist(err) {
		t.Error("lock file left after unlock")
	}
}

func writeLock(t *testing.T, path string, info LockInfo) {
	t.Helper()
	data, _ := json.Marshal(info)
	if err := os.WriteFile(path+".lock", data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func deadPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}

func TestLockOfADeadProcessIsRecovered(t *testing.T) {
	host, _ := os.Hostname()
	tests := map[string]struct {
		holder    LockInfo
		recovered bool
	}{
		"dead pid on this host":                  {LockInfo{Host: host, PID: deadPID(t), Command: "edgectl apply"}, true},
		"this pid, left by an earlier process":   {LockInfo{Host: host, PID: os.Getpid(), Command: "edgectl apply"}, true},
		"dead pid on another host is not judged": {LockInfo{Host: host + "-elsewhere", PID: deadPID(t), Command: "edgectl apply"}, false},
		"live pid on this host":                  {LockInfo{Host: host, PID: os.Getppid(), Command: "edgectl apply"}, false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state.json")
			writeLock(t, path, tc.holder)
			st := NewFileStore(path)
			var notes []string
			st.Logf = func(format string, args ...any) { notes = append(notes, fmt.Sprintf(format, args...)) }
			unlock, err := st.Lock(ctx, "edgectl apply")
			if !tc.recovered {
				if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), fmt.Sprintf("pid %d on host %s", tc.holder.PID, tc.holder.Host)) {
					t.Fatalf("err = %v, want ErrLocked naming the holder", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Lock: %v", err)
			}
			defer unlock()
			if len(notes) != 1 || !strings.Contains(notes[0], fmt.Sprintf("left by pid %d", tc.holder.PID)) {
				t.Errorf("notes = %q, want one naming the dead holder", notes)
			}
			var info LockInfo
			if err := json.Unmarshal(readFile(t, path+".lock"), &info); err != nil || info.PID != os.Getpid() {
				t.Errorf("lock file after recovery: %+v, %v", info, err)
			}
		})
	}
}

func TestLockFileWithoutHolderIsRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	if err := os.WriteFile(path+".lock", nil, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := NewFileStore(path).Lock(ctx, "x")
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "names no holder") {
		t.Fatalf("err = %v", err)
	}
}

func TestUnwritableDirectory(t *testing.T) {
	st := newStore(t)
	apply(t, st, 1)
	before := readFile(t, st.Path())
	dir := filepath.Dir(st.Path())
	if err := os.Chmod(dir, 0o555); err != nil {
		t.Fatal(err)
	}
	defer os.Chmod(dir, 0o755)
	if probe, err := os.Create(filepath.Join(dir, "probe")); err == nil {
		probe.Close()
		t.Skip("the directory is still writable (running as root)")
	}
	prior, _ := st.Read(ctx)
	err := st.Write(ctx, Next(prior, testResources(5), time.Now()), prior.Lineage, prior.Serial)
	if err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("err = %v, want permission denied", err)
	}
	if !bytes.Equal(before, readFile(t, st.Path())) {
		t.Error("state changed after a failed write")
	}
}

func TestFailedWriteLeavesTheOldState(t *testing.T) {
	tests := map[string]func(oldpath, newpath string) error{
		"rename of the state fails": func(oldpath, newpath string) error {
			if strings.HasSuffix(newpath, "state.json") {
				return errors.New("injected failure")
			}
			return os.Rename(oldpath, newpath)
		},
		"rename of the backup fails": func(oldpath, newpath string) error {
			if strings.HasSuffix(newpath, ".backup") {
				return errors.New("injected failure")
			}
			return os.Rename(oldpath, newpath)
		},
	}
	for name, rename := range tests {
		t.Run(name, func(t *testing.T) {
			st := newStore(t)
			apply(t, st, 1)
			before := readFile(t, st.Path())
			st.rename = rename
			prior, _ := st.Read(ctx)
			err := st.Write(ctx, Next(prior, testResources(3), time.Now()), prior.Lineage, prior.Serial)
			if err == nil || !strings.Contains(err.Error(), "injected failure") {
				t.Fatalf("err = %v", err)
			}
			if !bytes.Equal(before, readFile(t, st.Path())) {
				t.Error("state changed after a failed write")
			}
			entries, _ := os.ReadDir(filepath.Dir(st.Path()))
			for _, e := range entries {
				if strings.Contains(e.Name(), ".tmp-") || strings.HasSuffix(e.Name(), ".lock") {
					t.Errorf("left behind: %s", e.Name())
				}
			}
		})
	}
}

func TestRenameOntoADirectoryFails(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	if err := os.MkdirAll(filepath.Join(path, "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	st := NewFileStore(path)
	if err := st.Write(ctx, Next(nil, testResources(1), time.Now()), "", 0); err == nil {
		t.Fatal("Write over a directory succeeded")
	}
	if fi, err := os.Stat(filepath.Join(path, "x")); err != nil || !fi.IsDir() {
		t.Error("the directory in the way was changed")
	}
}

// TestConcurrentWriters runs writers that each lock, read, and write the
// next serial, in separate stores as separate processes would, while a
// reader checks that every read sees a complete snapshot.
func TestConcurrentWriters(t *testing.T) {
	path := filepath.Join(t.TempDir(), ".edgectl", "state.json")
	const writers, rounds = 8, 15
	var mu sync.Mutex
	written := 0
	done := make(chan struct{})
	readerErr := make(chan error, 1)
	go func() {
		st := NewFileStore(path)
		var last int64
		for {
			select {
			case <-done:
				readerErr <- nil
				return
			default:
			}
			s, err := st.Read(ctx)
			if err != nil {
				readerErr <- err
				return
			}
			if s != nil {
				if s.Serial < last {
					readerErr <- fmt.Errorf("serial went back from %d to %d", last, s.Serial)
					return
				}
				last = s.Serial
			}
		}
	}()
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			st := NewFileStore(path)
			for r := 0; r < rounds; r++ {
				// Half the writers lock around read-compare-write; the others
				// rely on Write's own lock and compare-and-swap.
				var unlock func() error
				if w%2 == 0 {
					var err error
					if unlock, err = st.Lock(ctx, "test"); errors.Is(err, ErrLocked) {
						continue
					} else if err != nil {
						t.Error(err)
						return
					}
				}
				prior, err := st.Read(ctx)
				if err != nil {
					t.Error(err)
					return
				}
				lineage, serial := prior.Version()
				err = st.Write(ctx, Next(prior, testResources(w), time.Now()), lineage, serial)
				switch {
				case err == nil:
					mu.Lock()
					written++
					mu.Unlock()
				case errors.Is(err, ErrLocked) || errors.Is(err, ErrStale):
				default:
					t.Error(err)
				}
				if unlock != nil {
					if err := unlock(); err != nil {
						t.Error(err)
					}
				}
			}
		}(w)
	}
	wg.Wait()
	close(done)
	if err := <-readerErr; err != nil {
		t.Fatalf("reader: %v", err)
	}
	s, err := NewFileStore(path).Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s == nil || s.Serial != int64(written) || written == 0 {
		t.Fatalf("final serial %v after %d successful writes", s, written)
	}
	t.Logf("%d of %d writes succeeded", written, writers*rounds)
}

func TestLocationAndOpen(t *testing.T) {
	if got := Location("flag.json", "env.json"); got != "flag.json" {
		t.Errorf("flag wins: got %s", got)
	}
	if got := Location("", "env.json"); got != "env.json" {
		t.Errorf("env: got %s", got)
	}
	if got := Location("", ""); got != DefaultPath {
		t.Errorf("default: got %s", got)
	}
	if _, err := Open("s3://bucket/edge"); err == nil || !strings.Contains(err.Error(), "s3:// stores are not supported; use a file path or etcd://HOST:PORT/PREFIX") {
		t.Errorf("Open(s3) err = %v", err)
	}
	s, err := Open("x/state.json")
	if err != nil || s.String() != "x/state.json" {
		t.Errorf("Open(file) = %v, %v", s, err)
	}
}
