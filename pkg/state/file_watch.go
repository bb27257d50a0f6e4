package state

import (
	"context"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

var _ Watcher = (*FileStore)(nil)

// DefaultFilePollInterval is how often a watched state file's size and
// modification time are compared, in case change notifications are missed.
const DefaultFilePollInterval = 2 * time.Second

// fileSettle lets a burst of file events (a truncate and a write) end
// before the file is read. edgectl itself replaces the file atomically (one
// rename), so the settle only matters for other writers; a read that still
// catches a half-written file fails to decode, keeps the serving state, and
// the write's next event reads it again. It is short because it adds to the
// time from an apply to the change serving (docs/PERFORMANCE.md).
const fileSettle = 10 * time.Millisecond

// FileWatchOptions tune FileStore.WatchWith.
type FileWatchOptions struct {
	// PollInterval is how often the file's size and modification time are
	// compared (default DefaultFilePollInterval); negative disables polling.
	PollInterval time.Duration
	// NoNotify disables change notifications: only polling remains.
	NoNotify bool
}

// Watch follows the state file with the default options (see WatchWith).
func (f *FileStore) Watch(ctx context.Context) <-chan WatchEvent {
	return f.WatchWith(ctx, FileWatchOptions{})
}

// WatchWith follows the state file until ctx is done, then closes the
// channel. The first event carries the file's content when the watch
// starts, so a change made between a reader's first Read and its watch is
// not missed. After that, each change of the file gives one event: change
// notifications on its directory (an apply renames a new file into place,
// which a watch on the file itself would lose), settled for a moment so
// that a truncate-and-write is read once, and a poll of its size and
// modification time in case notifications are missed or unavailable (a
// note then goes to Logf). Every event is Connected (a file has no
// connection to lose). It is Changed, with a nil Snapshot when the file
// was deleted, unless the file cannot be read or decoded: then Err says
// why (wrapping ErrCorrupt for the latter). Revision is always 0: the file store has no
// revisions; receivers compare lineage and serial.
func (f *FileStore) WatchWith(ctx context.Context, opts FileWatchOptions) <-chan WatchEvent {
	if opts.PollInterval == 0 {
		opts.PollInterval = DefaultFilePollInterval
	}
	out := make(chan WatchEvent)
	w := &fileWatch{f: f, path: filepath.Clean(f.path), opts: opts, out: out}
	events, errs, stop := w.notifications()
	go func() {
		defer close(out)
		defer stop()
		w.run(ctx, events, errs)
	}()
	return out
}

// fileWatch is one WatchWith in progress.
type fileWatch struct {
	f    *FileStore
	path string
	opts FileWatchOptions
	out  chan<- WatchEvent
	sig  fileSig
}

// notifications starts change notifications on the file's directory. When
// they are disabled or unavailable, the channels are nil (polling remains).
// They are started before the first read, so no change is lost between.
func (w *fileWatch) notifications() (<-chan fsnotify.Event, <-chan error, func()) {
	if w.opts.NoNotify {
		return nil, nil, func() {}
	}
	nw, err := fsnotify.NewWatcher()
	if err == nil {
		if err = nw.Add(filepath.Dir(w.path)); err != nil {
			nw.Close()
		}
	}
	if err != nil {
		poll := "not polling it either (polling is disabled)"
		if w.opts.PollInterval > 0 {
			poll = "polling it every " + w.opts.PollInterval.String()
		}
		w.f.logf("edgectl: no change notifications for the state %s (%v); %s", w.path, err, poll)
		return nil, nil, func() {}
	}
	return nw.Events, nw.Errors, func() { nw.Close() }
}

func (w *fileWatch) run(ctx context.Context, events <-chan fsnotify.Event, errs <-chan error) {
	var tick <-chan time.Time
	if w.opts.PollInterval > 0 {
		t := time.NewTicker(w.opts.PollInterval)
		defer t.Stop()
		tick = t.C
	}
	if !w.send(ctx) {
		return
	}
	var settled <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			if filepath.Clean(ev.Name) == w.path && settled == nil {
				settled = time.After(fileSettle)
			}
		case err, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			w.f.logf("edgectl: watching the state %s: %v", w.path, err)
		case <-settled:
			settled = nil
			if !w.send(ctx) {
				return
			}
		case <-tick:
			if statFile(w.path) == w.sig {
				continue
			}
			if !w.send(ctx) {
				return
			}
		}
	}
}

// send reads the file and sends what it holds; false when ctx is done.
func (w *fileWatch) send(ctx context.Context) bool {
	w.sig = statFile(w.path)
	snap, err := w.f.Read(ctx)
	ev := WatchEvent{Connected: true, Changed: err == nil, Snapshot: snap, Err: err}
	select {
	case w.out <- ev:
		return true
	case <-ctx.Done():
		return false
	}
}

// fileSig is what polling compares to notice a changed state file.
type fileSig struct {
	size  int64
	mtime int64
	ok    bool
}

func statFile(path string) fileSig {
	fi, err := os.Stat(path)
	if err != nil {
		return fileSig{}
	}
	return fileSig{size: fi.Size(), mtime: fi.ModTime().UnixNano(), ok: true}
}
