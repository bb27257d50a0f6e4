package state

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// watchFile starts a watch of s that ends with the test, and returns its
// events after checking that the first one carries the current content.
func watchFile(t *testing.T, s *FileStore, opts FileWatchOptions, wantSerial int64) <-chan WatchEvent {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ch := s.WatchWith(ctx, opts)
	t.Cleanup(func() {
		cancel()
		for range ch { // the watch closes its channel once ctx is done
		}
	})
	ev := nextEvent(t, ch, 5*time.Second, "first event")
	if !ev.Connected || !ev.Changed || ev.Err != nil || serialOf(ev.Snapshot) != wantSerial {
		t.Fatalf("first event = %+v, want the current state (serial %d)", ev, wantSerial)
	}
	return ch
}

func serialOf(s *Snapshot) int64 {
	if s == nil {
		return 0
	}
	return s.Serial
}

// nextChange returns the next event that carries content other than
// skipSerial's (a write may give more than one event: the rename and the
// backup's).
func nextChange(t *testing.T, ch <-chan WatchEvent, what string, skip func(WatchEvent) bool) WatchEvent {
	t.Helper()
	for {
		ev := nextEvent(t, ch, 5*time.Second, what)
		if !skip(ev) {
			return ev
		}
	}
}

func TestFileWatch(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	apply(t, s, 1)
	ch := watchFile(t, s, FileWatchOptions{PollInterval: -1}, 1)

	// An apply renames a new file into place.
	apply(t, s, 2)
	ev := nextChange(t, ch, "atomic rename", func(ev WatchEvent) bool { return serialOf(ev.Snapshot) == 1 })
	if !ev.Connected || !ev.Changed || ev.Err != nil || ev.Snapshot.Serial != 2 || ev.Revision != 0 {
		t.Fatalf("after an apply: %+v, want serial 2", ev)
	}

	// An editor truncates and rewrites the file in place.
	data := readFile(t, s.Path())
	next := Next(ev.Snapshot, testResources(3), time.Now())
	enc, err := EncodeSnapshot(next)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.Path(), enc, 0o600); err != nil {
		t.Fatal(err)
	}
	ev = nextChange(t, ch, "write in place", func(ev WatchEvent) bool { return serialOf(ev.Snapshot) == 2 })
	if ev.Err != nil || ev.Snapshot.Serial != 3 {
		t.Fatalf("after a write in place: %+v, want serial 3", ev)
	}

	// A damaged file is reported, not taken for an empty store.
	if err := os.WriteFile(s.Path(), data[:len(data)/2], 0o600); err != nil {
		t.Fatal(err)
	}
	ev = nextChange(t, ch, "damaged file", func(ev WatchEvent) bool { return ev.Err == nil && serialOf(ev.Snapshot) == 3 })
	if !ev.Connected || ev.Changed || !errors.Is(ev.Err, ErrCorrupt) || !strings.Contains(ev.Err.Error(), s.Path()) {
		t.Fatalf("after damaging the file: %+v, want an error wrapping ErrCorrupt naming the file", ev)
	}

	// A deleted file is an empty store.
	if err := os.Remove(s.Path()); err != nil {
		t.Fatal(err)
	}
	ev = nextChange(t, ch, "deletion", func(ev WatchEvent) bool { return ev.Err != nil })
	if !ev.Connected || !ev.Changed || ev.Err != nil || ev.Snapshot != nil {
		t.Fatalf("after deleting the file: %+v, want a changed event without snapshot", ev)
	}
}

// TestFileWatchPolls shows that polling alone notices a change, for
// filesystems without change notifications.
func TestFileWatchPolls(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	apply(t, s, 1)
	ch := watchFile(t, s, FileWatchOptions{NoNotify: true, PollInterval: 5 * time.Millisecond}, 1)
	apply(t, s, 2)
	ev := nextEvent(t, ch, 5*time.Second, "poll")
	if ev.Err != nil || serialOf(ev.Snapshot) != 2 {
		t.Fatalf("polled event = %+v, want serial 2", ev)
	}
}

// TestFileWatchUnwatchableDirectory notes that the file cannot be watched
// for changes (its directory does not exist yet), and still sends the
// current state.
func TestFileWatchUnwatchableDirectory(t *testing.T) {
	t.Parallel()
	s := NewFileStore(t.TempDir() + "/missing/state.json")
	var mu sync.Mutex
	var notes []string
	s.Logf = func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		notes = append(notes, format)
	}
	watchFile(t, s, FileWatchOptions{PollInterval: time.Hour}, 0)
	mu.Lock()
	defer mu.Unlock()
	if len(notes) != 1 || !strings.Contains(notes[0], "no change notifications") {
		t.Errorf("notes = %q, want one saying there are no change notifications", notes)
	}
}

// TestFileWatchEndsWithContext closes the channel once ctx is done.
func TestFileWatchEndsWithContext(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	ch := s.Watch(ctx)
	cancel()
	done := make(chan struct{})
	go func() {
		for range ch {
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the watch did not close its channel after ctx was done")
	}
}
