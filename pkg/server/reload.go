package server

import (
	"context"
	"fmt"
	"time"

	"github.com/edgectl/edgectl/pkg/edge"
	"github.com/edgectl/edgectl/pkg/state"
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
	snap, err := s.cfg.Store.Read(ctx)
	if err != nil {
		return s.failed(s.cur.Load(), err)
	}
	return s.update(snap, force)
}

// update compiles snap and swaps it in: the one path of every reload, from
// a watched store, a poll or SIGHUP. It skips a snapshot whose
// lineage and serial are the ones being served, unless force is set. A nil
// snap (an empty store) or one that does not compile is a failed reload:
// the current runtime keeps serving. After a swap, snap is written to the
// state cache, if there is one. reloadMu must be held.
func (s *Server) update(snap *state.Snapshot, force bool) error {
	cur := s.cur.Load()
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
	// The serving runtime lends the compile whatever did not change
	// (incremental compile); it keeps serving until the swap.
	opts := s.compile
	opts.Previous = cur
	rt, err := edge.Compile(snap, opts)
	if err != nil {
		return s.failed(cur, fmt.Errorf("serial %d: %w", snap.Serial, err))
	}
	old := s.install(rt, snap)
	s.activity.Add(1) // the compile's garbage: released once quiet
	s.mu.Lock()
	s.status.lastReload, s.status.lastError = time.Now(), ""
	s.mu.Unlock()
	s.metrics.reloads.WithLabelValues("success").Inc()
	if len(rt.Domains()) == 0 {
		s.log.Warn("reloaded a state without any Domain: every handshake is refused", "serial", rt.Serial())
	} else {
		s.log.Info("reloaded", "serial", rt.Serial(), "previous", old.Serial(), "domains", len(rt.Domains()))
	}
	// Requests still running on the old runtime finish on it; the origin
	// connections they release to its closed pools are closed then.
	old.Close()
	s.writeCache(snap)
	return nil
}

// writeCache saves snap as the state cache, when there is one. A failure
// is logged: the node serves on, with an older cache.
func (s *Server) writeCache(snap *state.Snapshot) {
	if s.cfg.StateCache == "" {
		return
	}
	if err := state.WriteCache(s.cfg.StateCache, snap); err != nil {
		s.log.Warn("could not save the state cache", "cache", s.cfg.StateCache, "serial", snap.Serial, "reason", err.Error())
	}
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

// watch reloads when the state changes, until ctx is done. A store that
// implements state.Watcher (the file and etcd stores) is followed (see
// follow); any other store is read every PollInterval.
func (s *Server) watch(ctx context.Context) {
	if w, ok := s.cfg.Store.(state.Watcher); ok {
		s.follow(ctx, w)
		return
	}
	if s.cfg.PollInterval < 0 {
		return
	}
	t := time.NewTicker(s.cfg.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.reload(ctx, false)
		}
	}
}

// follow consumes the events of a watched store until ctx is done. Each
// event updates the store's connection status (/state, /metrics); a new
// revision is compiled and swapped in by update, as a file reload is; an
// unreachable store or an unusable value is logged and recorded while the
// current runtime keeps serving.
func (s *Server) follow(ctx context.Context, w state.Watcher) {
	for ev := range w.Watch(ctx) {
		if ctx.Err() != nil {
			continue // drain until the watcher closes the channel
		}
		s.storeEvent(ev)
		if s.cfg.handled != nil {
			s.cfg.handled(ev)
		}
	}
}

// storeEvent handles one event of a watched store.
func (s *Server) storeEvent(ev state.WatchEvent) {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	s.mu.Lock()
	was := s.status.store
	st := &s.status.store
	st.connected = ev.Connected
	if ev.Connected {
		st.revision = ev.Revision
	}
	st.lastError = ""
	if ev.Err != nil {
		st.lastError = ev.Err.Error()
	}
	s.mu.Unlock()
	s.metrics.setConnected(ev.Connected)

	cur := s.cur.Load()
	switch {
	case !ev.Connected:
		reason := "no answer"
		if ev.Err != nil {
			reason = ev.Err.Error()
		}
		s.log.Warn("state store unreachable; still serving the current state and retrying", "store", s.cfg.Store.String(), "serial", cur.Serial(), "reason", reason)
		return
	case !was.connected:
		s.log.Info("state store reachable again", "store", s.cfg.Store.String(), "revision", ev.Revision)
	}
	switch {
	case ev.Err != nil:
		s.failed(cur, ev.Err)
	case ev.Changed:
		s.update(ev.Snapshot, false)
	}
}
