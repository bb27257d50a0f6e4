package state

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Watcher is implemented by stores that can follow the state as others
// write it: the etcd store (a watch on its key) and the file store (change
// notifications and polling of its file). A server type-asserts its Store
// to Watcher: a store without it is polled.
type Watcher interface {
	// Watch follows the state until ctx is done, then closes the channel.
	// The first event that carries content (Changed) is the state when the
	// store was first reached; after that, each new revision gives one
	// event. The watcher reconnects by itself, with backoff, and after a
	// reconnection re-reads the state, so a change made meanwhile (or a
	// compacted history, or a restarted store) is never missed. Events are
	// delivered in order; a slow receiver delays the watcher, not the store.
	Watch(ctx context.Context) <-chan WatchEvent
}

// WatchEvent is one observation of a watched store.
type WatchEvent struct {
	// Connected says whether the store answered when the event was made.
	// An event with Connected false and Err set is sent when the store
	// stops answering (or cannot be reached at the start); one with
	// Connected true and Changed false when it answers again and the state
	// did not change meanwhile.
	Connected bool
	// Changed says the event carries the store's content: Snapshot (nil for
	// an empty store) at Revision.
	Changed bool
	// Snapshot is the new snapshot when Changed; nil for an empty store.
	Snapshot *Snapshot
	// Revision identifies the stored value (etcd's ModRevision of the state
	// key; 0 for an empty store).
	Revision int64
	// Err says why the store cannot be reached (Connected false), or why
	// its content cannot be used (Connected true: it wraps ErrCorrupt, and
	// the receiver should keep what it has).
	Err error
}

// WriteCache saves s to path atomically (a temporary file renamed over it),
// so that a node can start from the last snapshot it saw when its store
// cannot be reached. The parent directory is made if needed.
func WriteCache(path string, s *Snapshot) error {
	if s == nil {
		return errors.New("writing the state cache: no snapshot")
	}
	data, err := EncodeSnapshot(s)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("writing the state cache: %w", err)
	}
	if err := WriteFileAtomic(path, data, 0o600); err != nil {
		return fmt.Errorf("writing the state cache %s: %w", path, err)
	}
	return nil
}

// ReadCache returns the snapshot saved by WriteCache at path, or nil and no
// error when there is none. An unreadable cache gives an error wrapping
// ErrCorrupt.
func ReadCache(path string) (*Snapshot, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the state cache: %w", err)
	}
	s, err := DecodeSnapshot(data)
	if err != nil {
		return nil, fmt.Errorf("%w: state cache %s: %v", ErrCorrupt, path, err)
	}
	return s, nil
}
