package server

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/edgectl/edgectl/pkg/edge"
	"github.com/edgectl/edgectl/pkg/state"
)

// Reload timing.
const (
	// settle lets a burst of file events (a truncate and a write) end
	// before the file is read.
	settle = 50 * time.Millisecond
	// lateClose closes the idle origin connections that requests still
	// running on a replaced runtime return to its pool.
	lateClose = 30 * time.Second
)

// Reload reads the store, compiles its snapshot and swaps it in, even if
// its serial did not change (SIGHUP). When the snapshot cannot be read or
// compiled, the error is logged, counted and returned, and the current
// runtime keeps serving.
func (s *Server) Reload(ctx context.Context) error { return s.reload(ctx, true) }

// reload is Reload that skips compiling a snapshot whose lineage and
// serial are the ones being served, unless force is set.
func (s *Server) reload(ctx context.Context, force bool) error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	cur := s.cur.Load()
	snap, err := s.cfg.Store.Read(ctx)
	if err != nil {
		return s.failed(cur, err)
	}
	if snap == nil {
		return s.failed(cur, fmt.Errorf("%w: the state %s is empty or missing", ErrNothingToServe, s.cfg.Store))
	}
	if !force && snap.Lineage == cur.Lineage() && snap.Serial == cur.Serial() {
		s.mu.Lock()
		recovered := s.status.lastError != ""
		s.status.lastError = ""
		s.mu.Unlock()
		if recovered {
			s.log.Info("state readable again; it holds the serial being served", "serial", snap.Serial)
		}
		return nil
	}
	rt, err := edge.Compile(snap, s.compile)
	if err != nil {
		return s.failed(cur, fmt.Errorf("serial %d: %w", snap.Serial, err))
	}
	old := s.install(rt, snap)
	s.mu.Lock()
	s.status.lastReload, s.status.lastError = time.Now(), ""
	s.mu.Unlock()
	s.metrics.reloads.WithLabelValues("success").Inc()
	if len(rt.Domains()) == 0 {
		s.log.Warn("reloaded a state without any Domain: every handshake is refused", "serial", rt.Serial())
	} else {
		s.log.Info("reloaded", "serial", rt.Serial(), "previous", old.Serial(), "domains", len(rt.Domains()))
	}
	old.Close()
	time.AfterFunc(lateClose, old.Close)
	return nil
}

// failed records a reload that could not happen.
func (s *Server) failed(cur *edge.Runtime, err error) error {
	s.mu.Lock()
	s.status.lastReload, s.status.lastError = time.Now(), err.Error()
	s.mu.Unlock()
	s.metrics.reloads.WithLabelValues("failure").Inc()
	s.log.Error("reload failed; still serving the previous state", "serial", cur.Serial(), "reason", err.Error())
	return err
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

// watch reloads when the state changes, until ctx is done. A file store is
// watched with change notifications on its directory (an apply renames a
// new file into place) and polled for size and modification time; other
// stores are polled.
func (s *Server) watch(ctx context.Context) {
	fs, isFile := s.cfg.Store.(*state.FileStore)
	var path string
	var events <-chan fsnotify.Event
	var errs <-chan error
	var sig fileSig
	if isFile {
		path = filepath.Clean(fs.Path())
		sig = s.loadedSig
		if !s.cfg.NoWatch {
			w, err := fsnotify.NewWatcher()
			if err == nil {
				err = w.Add(filepath.Dir(path))
			}
			if err != nil {
				s.log.Warn("no change notifications for the state; polling it", "state", path, "interval", s.cfg.PollInterval.String(), "reason", err.Error())
			} else {
				defer w.Close()
				events, errs = w.Events, w.Errors
			}
		}
	}
	var tick <-chan time.Time
	if s.cfg.PollInterval > 0 {
		t := time.NewTicker(s.cfg.PollInterval)
		defer t.Stop()
		tick = t.C
	}
	var settled <-chan time.Time
	if isFile && statFile(path) != sig {
		// Changed since the startup load.
		sig = statFile(path)
		s.reload(ctx, false)
	}
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			if filepath.Clean(ev.Name) == path && settled == nil {
				settled = time.After(settle)
			}
		case err, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			s.log.Warn("watching the state", "error", err.Error())
		case <-settled:
			settled = nil
			sig = statFile(path)
			s.reload(ctx, false)
		case <-tick:
			if isFile {
				next := statFile(path)
				if next == sig {
					continue
				}
				sig = next
			}
			s.reload(ctx, false)
		}
	}
}
