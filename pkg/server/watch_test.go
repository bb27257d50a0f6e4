package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/edgectl/edgectl/pkg/manifest"
	"github.com/edgectl/edgectl/pkg/server"
	"github.com/edgectl/edgectl/pkg/state"
)

// watchedStore is a state.Store and state.Watcher whose events the test
// sends; it stands for the etcd store (its location is etcd://).
type watchedStore struct {
	mu      sync.Mutex
	snap    *state.Snapshot
	readErr error
	events  chan state.WatchEvent
}

var (
	_ state.Store   = (*watchedStore)(nil)
	_ state.Watcher = (*watchedStore)(nil)
	_ io.Closer     = (*watchedStore)(nil)
)

// Close is a no-op: as the etcd store, watchedStore holds a connection
// (io.Closer is how the server tells a store that may not answer).
func (w *watchedStore) Close() error { return nil }

func (w *watchedStore) Read(context.Context) (*state.Snapshot, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.snap, w.readErr
}

func (w *watchedStore) set(snap *state.Snapshot, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.snap, w.readErr = snap, err
}

func (w *watchedStore) Write(context.Context, *state.Snapshot, string, int64) error {
	return errors.New("read-only")
}

func (w *watchedStore) Lock(context.Context, string) (func() error, error) {
	return nil, errors.New("read-only")
}

func (w *watchedStore) String() string { return "etcd://127.0.0.1:2379/test" }

func (w *watchedStore) Watch(ctx context.Context) <-chan state.WatchEvent {
	out := make(chan state.WatchEvent)
	go func() {
		defer close(out)
		for {
			select {
			case <-ctx.Done():
				return
			case ev := <-w.events:
				select {
				case out <- ev:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out
}

func (r *running) state(t *testing.T) server.StateInfo {
	t.Helper()
	_, body := r.admin(t, "/state")
	var info server.StateInfo
	if err := json.Unmarshal([]byte(body), &info); err != nil {
		t.Fatalf("/state: %v: %s", err, body)
	}
	return info
}

func cachedSerial(t *testing.T, path string) int64 {
	t.Helper()
	s, err := state.ReadCache(path)
	if err != nil || s == nil {
		t.Fatalf("state cache: %v %v", s, err)
	}
	return s.Serial
}

// TestFollowWatchedStore drives a server with the events of a watched
// store: each new revision reloads as a file change does, and the
// connection shows in /state, /readyz and /metrics.
func TestFollowWatchedStore(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ws := &watchedStore{snap: f.snapshot(1, "v1"), events: make(chan state.WatchEvent)}
	cache := filepath.Join(t.TempDir(), "cache", "state.json")
	r := start(t, f, func(c *server.Config) { c.Store, c.StateCache = ws, cache })
	if got := cachedSerial(t, cache); got != 1 {
		t.Errorf("cache after startup holds serial %d, want 1", got)
	}
	reloads := func(result string) string { return r.metric(t, `edgectl_reloads_total{result="`+result+`"}`) }

	// The watch's first event is the state just loaded: nothing to do.
	ws.events <- state.WatchEvent{Connected: true, Changed: true, Snapshot: f.snapshot(1, "v1"), Revision: 5}
	eventually(t, "revision 5", func() bool { return r.state(t).Store.Revision == 5 })
	if got := reloads("success"); got != "0" {
		t.Errorf("reloads after the unchanged first event = %s, want 0", got)
	}

	ws.events <- state.WatchEvent{Connected: true, Changed: true, Snapshot: f.snapshot(2, "v2"), Revision: 6}
	eventually(t, "serial 2", func() bool { return r.srv.Runtime().Serial() == 2 })
	if _, v, _, err := get(r.client(f, "open.test", nil, false), "open.test", "/"); err != nil || v != "v2" {
		t.Errorf("after the new revision: version %q, %v", v, err)
	}
	if got := r.metric(t, "edgectl_state_serial"); got != "2" {
		t.Errorf("edgectl_state_serial = %s, want 2", got)
	}
	eventually(t, "the cache to hold serial 2", func() bool { return cachedSerial(t, cache) == 2 })

	ws.events <- state.WatchEvent{Connected: false, Err: errors.New("cannot reach etcd at 127.0.0.1:2379: connection refused")}
	eventually(t, "disconnected", func() bool { return !r.state(t).Store.Connected })
	want := server.StoreInfo{Kind: "etcd", Connected: false, Revision: 6, LastError: "cannot reach etcd at 127.0.0.1:2379: connection refused"}
	if got := r.state(t).Store; got != want {
		t.Errorf("/state store = %+v, want %+v", got, want)
	}
	if got := r.metric(t, server.MetricStoreConnected); got != "0" {
		t.Errorf("%s = %s while disconnected, want 0", server.MetricStoreConnected, got)
	}
	if code, body := r.admin(t, "/readyz"); code != 200 || !strings.Contains(body, "serving serial 2") || !strings.Contains(body, "state store unreachable: cannot reach etcd") {
		t.Errorf("/readyz while disconnected = %d %q", code, body)
	}
	if _, v, _, err := get(r.client(f, "open.test", nil, false), "open.test", "/"); err != nil || v != "v2" {
		t.Errorf("while disconnected: version %q, %v", v, err)
	}

	ws.events <- state.WatchEvent{Connected: true, Revision: 6}
	eventually(t, "connected again", func() bool { return r.state(t).Store.Connected })
	if got := r.metric(t, server.MetricStoreConnected); got != "1" {
		t.Errorf("%s = %s after reconnecting, want 1", server.MetricStoreConnected, got)
	}

	// An unusable value and an uncompilable snapshot are failed reloads.
	ws.events <- state.WatchEvent{Connected: true, Revision: 7, Err: fmt.Errorf("%w: etcd key /test/state: not valid JSON", state.ErrCorrupt)}
	eventually(t, "the corrupt value to fail", func() bool { return reloads("failure") == "1" })
	if info := r.state(t); !strings.Contains(info.LastError, "state is unreadable") || info.Serial != 2 || info.Store.Revision != 7 {
		t.Errorf("/state after a corrupt value: %+v", info)
	}
	broken := f.snapshot(3, "v3")
	broken.Resources[4].Spec.(*manifest.DomainSpec).Application = "gone"
	ws.events <- state.WatchEvent{Connected: true, Changed: true, Snapshot: broken, Revision: 8}
	eventually(t, "the broken snapshot to fail", func() bool { return reloads("failure") == "2" })
	if got := r.srv.Runtime().Serial(); got != 2 {
		t.Errorf("serving serial %d after a failed compile, want 2", got)
	}
	if got := cachedSerial(t, cache); got != 2 {
		t.Errorf("cache holds serial %d after a failed compile, want 2", got)
	}

	// SIGHUP reads the store again.
	ws.set(f.snapshot(4, "v4"), nil)
	if err := r.srv.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, info := cachedSerial(t, cache), r.state(t); got != 4 || info.Serial != 4 || info.LastError != "" {
		t.Errorf("after Reload: cache serial %d, /state %+v", got, info)
	}
}

// TestStartFromCache starts a server whose watched store cannot be reached.
func TestStartFromCache(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	unreachable := errors.New("reading state: cannot reach etcd at 127.0.0.1:2379: connection refused")
	cache := filepath.Join(t.TempDir(), "state-cache.json")

	t.Run("no cache", func(t *testing.T) {
		cfg := f.config()
		cfg.Store = &watchedStore{readErr: unreachable}
		_, err := server.New(context.Background(), cfg)
		if err == nil || !strings.Contains(err.Error(), "cannot reach etcd") || !strings.Contains(err.Error(), "no state cache to start from") {
			t.Fatalf("want an error naming etcd and the missing cache, got %v", err)
		}
		cfg.StateCache = cache
		_, err = server.New(context.Background(), cfg)
		if err == nil || !strings.Contains(err.Error(), "does not exist yet") {
			t.Fatalf("want an error naming the missing cache file, got %v", err)
		}
	})
	if err := state.WriteCache(cache, f.snapshot(3, "v3")); err != nil {
		t.Fatal(err)
	}
	t.Run("corrupt store", func(t *testing.T) {
		cfg := f.config()
		cfg.Store, cfg.StateCache = &watchedStore{readErr: fmt.Errorf("%w: bad", state.ErrCorrupt)}, cache
		if _, err := server.New(context.Background(), cfg); !errors.Is(err, state.ErrCorrupt) {
			t.Fatalf("a corrupt store must not fall back to the cache: %v", err)
		}
	})
	t.Run("from the cache", func(t *testing.T) {
		ws := &watchedStore{readErr: unreachable, events: make(chan state.WatchEvent)}
		r := start(t, f, func(c *server.Config) { c.Store, c.StateCache = ws, cache })
		if !strings.Contains(r.log.String(), "starting from the state cache") {
			t.Errorf("the start from the cache is not logged:\n%s", r.log.String())
		}
		info := r.state(t)
		if info.Serial != 3 || info.Store.Connected || !strings.Contains(info.Store.LastError, "cannot reach etcd") {
			t.Errorf("/state = %+v", info)
		}
		if code, _ := r.admin(t, "/readyz"); code != 200 {
			t.Errorf("/readyz = %d, want 200", code)
		}
		if _, v, _, err := get(r.client(f, "open.test", nil, false), "open.test", "/"); err != nil || v != "v3" {
			t.Errorf("from the cache: version %q, %v", v, err)
		}
		// etcd answers: the node follows it.
		ws.events <- state.WatchEvent{Connected: true, Changed: true, Snapshot: f.snapshot(5, "v5"), Revision: 9}
		eventually(t, "serial 5", func() bool { return r.srv.Runtime().Serial() == 5 })
		if info := r.state(t); !info.Store.Connected || info.Store.LastError != "" {
			t.Errorf("/state after reconnecting = %+v", info.Store)
		}
		if !strings.Contains(r.log.String(), "state store reachable again") {
			t.Errorf("the reconnection is not logged")
		}
		eventually(t, "the cache to hold serial 5", func() bool { return cachedSerial(t, cache) == 5 })
	})
}
