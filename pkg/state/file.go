package state

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

var _ Store = (*FileStore)(nil)

// FileStore is the embedded state store: one JSON file, replaced atomically
// (temp file, fsync, rename, fsync of the directory), the previous snapshot
// kept next to it as PATH.backup, the last snapshots in the directory
// PATH.history (one file per serial), and writers excluded by a lock file
// PATH.lock that names its holder.
//
// A write puts the new snapshot in the history first, then replaces the
// state file: the rename of the state file commits both. A history file
// whose state write failed has a serial above the state's, and History
// leaves it out until a later write replaces it.
type FileStore struct {
	path string
	// Logf receives notes for a person, such as a recovered lock; nil drops them.
	Logf func(format string, args ...any)
	// HistoryLimit is how many snapshots the history keeps, the current one
	// included (DefaultHistoryLimit when zero).
	HistoryLimit int

	mu   sync.Mutex
	held []byte // content of the lock file this store holds, nil when not held

	// decoder keeps what the last read decoded: the next read reuses its
	// resources whose bytes did not change (see decode.go).
	decoder reuseDecoder

	// Test hooks; nil means the real thing.
	rename func(oldpath, newpath string) error
}

// NewFileStore returns the file store at path. Nothing is touched until a
// method is called.
func NewFileStore(path string) *FileStore { return &FileStore{path: path} }

// String returns the state file's path.
func (f *FileStore) String() string { return f.path }

// Path returns the state file's path.
func (f *FileStore) Path() string { return f.path }

// BackupPath returns where the previous snapshot is kept.
func (f *FileStore) BackupPath() string { return f.path + ".backup" }

// HistoryDir returns the directory that keeps the last snapshots.
func (f *FileStore) HistoryDir() string { return f.path + ".history" }

// historyPath is the history file of serial.
func (f *FileStore) historyPath(serial int64) string {
	return filepath.Join(f.HistoryDir(), fmt.Sprintf("%020d.json", serial))
}

// LockPath returns the lock file's path.
func (f *FileStore) LockPath() string { return f.path + ".lock" }

func (f *FileStore) logf(format string, args ...any) {
	if f.Logf != nil {
		f.Logf(format, args...)
	}
}

// Read returns the stored snapshot, or nil when the file does not exist.
// The snapshots one store reads share the decoded specs and labels of the
// resources that did not change between reads, so that a server re-reading
// a large state after a change decodes only what changed: treat a read
// snapshot's specs as read-only.
func (f *FileStore) Read(ctx context.Context) (*Snapshot, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s, _, err := f.read()
	return s, err
}

func (f *FileStore) read() (*Snapshot, []byte, error) {
	data, err := os.ReadFile(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("reading state: %w", err)
	}
	s, err := f.decoder.decode(data)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %s: %v; edgectl leaves it unchanged: fix it, or restore the previous snapshot from %s", ErrCorrupt, f.path, err, f.BackupPath())
	}
	return s, data, nil
}

// EncodeSnapshot returns the state file's content for s. It refuses a
// snapshot that holds private-key material: keys are stored only as
// references.
func EncodeSnapshot(s *Snapshot) ([]byte, error) {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encoding state: %w", err)
	}
	if bytes.Contains(data, []byte("PRIVATE KEY")) {
		return nil, errors.New("refusing to store private-key material in the state: keys are kept as privateKeyFile or privateKeyEnv references")
	}
	return append(data, '\n'), nil
}

// Write replaces the snapshot if the stored lineage and serial are still
// expectLineage and expectSerial. It takes the lock for the duration of the
// write unless this store already holds it. On any failure the state file is
// left as it was.
func (f *FileStore) Write(ctx context.Context, next *Snapshot, expectLineage string, expectSerial int64) (err error) {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkNext(next, expectLineage, expectSerial); err != nil {
		return fmt.Errorf("writing state: %w", err)
	}
	data, err := EncodeSnapshot(next)
	if err != nil {
		return err
	}
	f.mu.Lock()
	holding := f.held != nil
	f.mu.Unlock()
	if !holding {
		unlock, err := f.Lock(ctx, "edgectl (state write)")
		if err != nil {
			return err
		}
		defer func() {
			if uerr := unlock(); err == nil {
				err = uerr
			}
		}()
	}
	cur, curData, err := f.read()
	if err != nil {
		return err
	}
	if err := CheckVersion(cur, expectLineage, expectSerial); err != nil {
		return err
	}
	if curData != nil {
		if err := writeFileAtomic(f.BackupPath(), curData, 0o644, f.rename); err != nil {
			return fmt.Errorf("keeping the previous state as %s: %w", f.BackupPath(), err)
		}
	}
	if err := os.MkdirAll(f.HistoryDir(), 0o755); err != nil {
		return fmt.Errorf("writing the state history: %w", err)
	}
	if err := writeFileAtomic(f.historyPath(next.Serial), data, 0o644, f.rename); err != nil {
		return fmt.Errorf("writing the state history %s: %w", f.HistoryDir(), err)
	}
	if err := writeFileAtomic(f.path, data, 0o644, f.rename); err != nil {
		return fmt.Errorf("writing state %s: %w", f.path, err)
	}
	if err := f.pruneHistory(next.Serial); err != nil {
		f.logf("edgectl: the state was written, but pruning its history %s failed: %v", f.HistoryDir(), err)
	}
	return nil
}

// historySerials lists the serials of the history files, in no order.
func (f *FileStore) historySerials() ([]int64, error) {
	entries, err := os.ReadDir(f.HistoryDir())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var serials []int64
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || e.IsDir() || strings.HasPrefix(name, ".") {
			continue
		}
		if n, err := strconv.ParseInt(name, 10, 64); err == nil && n > 0 {
			serials = append(serials, n)
		}
	}
	return serials, nil
}

// pruneHistory removes the history files that fall out of the limit below
// serial, and those above it (left by a failed write or an older lineage).
func (f *FileStore) pruneHistory(serial int64) error {
	serials, err := f.historySerials()
	if err != nil {
		return err
	}
	keepFrom := serial - int64(historyLimit(f.HistoryLimit)) + 1
	var first error
	for _, n := range serials {
		if n < keepFrom || n > serial {
			if err := os.Remove(f.historyPath(n)); err != nil && !errors.Is(err, fs.ErrNotExist) && first == nil {
				first = err
			}
		}
	}
	return first
}

// History returns the kept snapshots of the current lineage, newest first.
// A history file that cannot be read is an error that names it.
func (f *FileStore) History(ctx context.Context) ([]*Snapshot, error) {
	cur, err := f.Read(ctx)
	if err != nil || cur == nil {
		return nil, err
	}
	serials, err := f.historySerials()
	if err != nil {
		return nil, fmt.Errorf("reading the state history: %w", err)
	}
	var kept []*Snapshot
	for _, n := range serials {
		if n >= cur.Serial {
			continue
		}
		data, err := os.ReadFile(f.historyPath(n))
		if errors.Is(err, fs.ErrNotExist) {
			continue // pruned meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("reading the state history: %w", err)
		}
		s, err := DecodeSnapshot(data)
		if err != nil {
			return nil, fmt.Errorf("%w: history file %s: %v", ErrCorrupt, f.historyPath(n), err)
		}
		kept = append(kept, s)
	}
	return historyOf(cur, kept), nil
}

// processLocks records the lock files held by this process, so that a lock
// file naming this process's pid is recognised as a leftover of an earlier
// process (a restarted container reuses pids) rather than as held. Its mutex
// is held while a lock file of this process is created or removed, so the
// record and the files always agree for the stores of this process.
var processLocks = struct {
	sync.Mutex
	paths map[string]bool
}{paths: map[string]bool{}}

func lockKey(path string) string {
	if abs, err := filepath.Abs(path); err == nil {
		return abs
	}
	return path
}

// Lock creates the lock file with O_EXCL and records this process in it. A
// lock held by a process that no longer exists on this host is removed, with
// a note to Logf; any other held lock is refused with its holder's name.
func (f *FileStore) Lock(ctx context.Context, command string) (func() error, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.held != nil {
		return nil, fmt.Errorf("state lock %s is already held by this store", f.LockPath())
	}
	lockPath := f.LockPath()
	if err := os.MkdirAll(filepath.Dir(lockPath), 0o755); err != nil {
		return nil, fmt.Errorf("taking the state lock: %w", err)
	}
	host, _ := os.Hostname()
	me := LockInfo{Host: host, PID: os.Getpid(), Time: time.Now().UTC().Truncate(time.Second), Command: command}
	data, err := json.Marshal(me)
	if err != nil {
		return nil, err
	}
	data = append(data, '\n')
	key := lockKey(lockPath)
	processLocks.Lock()
	defer processLocks.Unlock()
	for attempt := 0; ; attempt++ {
		err := createExclusive(lockPath, data)
		if err == nil {
			f.held = data
			processLocks.paths[key] = true
			return f.unlocker(lockPath, key, data), nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("taking the state lock: %w", err)
		}
		holder, raw, rerr := readLockHolder(lockPath)
		if errors.Is(rerr, fs.ErrNotExist) && attempt < 3 {
			continue // released meanwhile
		}
		if rerr != nil {
			return nil, fmt.Errorf("%w: the lock file %s names no holder (it may be being written right now); if no edgectl is writing this state, remove it", ErrLocked, lockPath)
		}
		if attempt < 3 && holder.Host == host && !f.heldHere(holder, key) {
			if breakLock(lockPath, raw) {
				f.logf("edgectl: removed the state lock %s left by %s: that process no longer exists", lockPath, holder)
				continue
			}
		}
		return nil, fmt.Errorf("%w by %s; if that process is gone, remove %s", ErrLocked, holder, lockPath)
	}
}

// heldHere reports whether holder (on this host) is still holding its lock:
// its process is alive and, when it is this process, it did take the lock.
// The caller holds processLocks.
func (f *FileStore) heldHere(holder LockInfo, key string) bool {
	if holder.PID == os.Getpid() {
		return processLocks.paths[key]
	}
	return processAlive(holder.PID)
}

func (f *FileStore) unlocker(lockPath, key string, data []byte) func() error {
	var once sync.Once
	var err error
	return func() error {
		once.Do(func() {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.held = nil
			processLocks.Lock()
			defer processLocks.Unlock()
			delete(processLocks.paths, key)
			raw, rerr := os.ReadFile(lockPath)
			switch {
			case errors.Is(rerr, fs.ErrNotExist):
				err = fmt.Errorf("state lock %s was removed by someone else while held", lockPath)
			case rerr != nil:
				err = fmt.Errorf("releasing the state lock: %w", rerr)
			case !bytes.Equal(raw, data):
				err = fmt.Errorf("state lock %s was taken over by someone else while held", lockPath)
			default:
				if rerr := os.Remove(lockPath); rerr != nil {
					err = fmt.Errorf("releasing the state lock: %w", rerr)
				}
			}
		})
		return err
	}
}

// createExclusive creates path holding data, failing with fs.ErrExist when
// path exists. The file appears with its content complete: data is written
// to a temporary file that is then hard-linked to path (link fails if path
// exists). Where hard links are not supported it falls back to O_EXCL and
// writing, during which a reader may see an empty file.
func createExclusive(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err == nil {
		_, err = tmp.Write(data)
		if err == nil {
			err = tmp.Sync()
		}
		if cerr := tmp.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = os.Link(tmp.Name(), path)
		}
		_ = os.Remove(tmp.Name())
		if err == nil || errors.Is(err, fs.ErrExist) {
			return err
		}
	}
	fh, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	_, err = fh.Write(data)
	if err == nil {
		err = fh.Sync()
	}
	if cerr := fh.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(path)
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// readLockHolder reads the holder of the lock file at path. An empty or
// partial file (a lock being written without hard links) is read again
// for a short while before it is reported.
func readLockHolder(path string) (LockInfo, []byte, error) {
	var holder LockInfo
	for try := 0; ; try++ {
		raw, err := os.ReadFile(path)
		if err != nil {
			return holder, nil, err
		}
		err = json.Unmarshal(raw, &holder)
		if err == nil && holder.PID > 0 {
			return holder, raw, nil
		}
		if try == 5 {
			return holder, raw, errors.New("no holder")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// breakLock removes the dead holder's lock file whose content is raw. It
// first moves the file aside and checks that it moved the dead holder's
// file, not a lock another process took meanwhile (which is put back).
func breakLock(lockPath string, raw []byte) bool {
	aside := fmt.Sprintf("%s.stale-%d-%d", lockPath, os.Getpid(), time.Now().UnixNano())
	if err := os.Rename(lockPath, aside); err != nil {
		return false
	}
	moved, err := os.ReadFile(aside)
	if err == nil && bytes.Equal(moved, raw) {
		_ = os.Remove(aside)
		return true
	}
	_ = os.Link(aside, lockPath) // put the live lock back; fails only if yet another lock exists
	_ = os.Remove(aside)
	return false
}

// WriteFileAtomic replaces path with data so that readers see either the old
// or the new content, never a mix: it writes a temporary file in the same
// directory, syncs it, renames it over path and syncs the directory. On
// failure path is unchanged.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	return writeFileAtomic(path, data, perm, nil)
}

func writeFileAtomic(path string, data []byte, perm os.FileMode, rename func(string, string) error) (err error) {
	if rename == nil {
		rename = os.Rename
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if _, err = tmp.Write(data); err != nil {
		return err
	}
	if err = tmp.Chmod(perm); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if err = rename(tmp.Name(), path); err != nil {
		return err
	}
	return syncDir(dir)
}

// syncDir makes a rename in dir durable. File systems that cannot sync a
// directory are not an error.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return nil
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !isSyncUnsupported(err) {
		return fmt.Errorf("syncing directory %s: %w", dir, err)
	}
	return nil
}
