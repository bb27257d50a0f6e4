package state

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/edgectl/edgectl/pkg/state/etcdtest"
)

func TestParseEtcdLocation(t *testing.T) {
	tests := map[string]struct {
		in      string
		want    EtcdLocation
		wantErr string
	}{
		"one endpoint": {in: "etcd://127.0.0.1:2379/edgectl",
			want: EtcdLocation{Endpoints: []string{"127.0.0.1:2379"}, Prefix: "/edgectl"}},
		"several endpoints, deep prefix": {in: "etcd://a:1,b:2,[::1]:3/fleet/prod/",
			want: EtcdLocation{Endpoints: []string{"a:1", "b:2", "[::1]:3"}, Prefix: "/fleet/prod"}},
		"tls parameters": {in: "etcd://h:2379/p?cacert=/ca.pem&cert=c.pem&key=k.pem",
			want: EtcdLocation{Endpoints: []string{"h:2379"}, Prefix: "/p", CACert: "/ca.pem", Cert: "c.pem", Key: "k.pem"}},
		"no prefix":         {in: "etcd://h:2379", wantErr: "no key prefix"},
		"only a slash":      {in: "etcd://h:2379/", wantErr: "no key prefix"},
		"no port":           {in: "etcd://h/p", wantErr: `endpoint "h" is not HOST:PORT`},
		"empty endpoint":    {in: "etcd://a:1,/p", wantErr: `endpoint "" is not HOST:PORT`},
		"no endpoint":       {in: "etcd:///p", wantErr: "no etcd endpoint"},
		"unknown parameter": {in: "etcd://h:1/p?ca=x", wantErr: `unknown query parameter "ca"`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := ParseEtcdLocation(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestOpenEtcd(t *testing.T) {
	s, err := Open("etcd://127.0.0.1:2379/edge?cacert=q.pem")
	if err != nil {
		t.Fatal(err)
	}
	es, ok := s.(*EtcdStore)
	if !ok || es.String() != "etcd://127.0.0.1:2379/edge" || es.Key() != "/edge/state" || es.opts.CACert != "q.pem" {
		t.Fatalf("Open = %#v", s)
	}
	s, err = OpenWith("etcd://127.0.0.1:2379/edge?cacert=q.pem&cert=c&key=k", OpenOptions{Etcd: EtcdOptions{CACert: "flag.pem"}})
	if err != nil {
		t.Fatal(err)
	}
	if o := s.(*EtcdStore).opts; o.CACert != "flag.pem" || o.Cert != "c" || o.Key != "k" {
		t.Errorf("flags must win over query parameters, field by field: %+v", o)
	}
	if _, err := Open("etcd://127.0.0.1:2379/edge?cert=c.pem"); err == nil || !strings.Contains(err.Error(), "needs both a certificate and a key") {
		t.Errorf("cert without key: err = %v", err)
	}
	if _, err := OpenWith("state.json", OpenOptions{Etcd: EtcdOptions{CACert: "ca.pem"}}); err == nil || !strings.Contains(err.Error(), "apply only to an etcd:// state store") {
		t.Errorf("etcd TLS flag with a file store: err = %v", err)
	}
}

// newEtcdStore opens the store at prefix on srv, closed when the test ends.
func newEtcdStore(t *testing.T, srv *etcdtest.Server, prefix string, opts EtcdOptions) *EtcdStore {
	t.Helper()
	s, err := NewEtcdStore(srv.Location(prefix), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// rawClient is a plain etcd client, to look at and tamper with the keys.
func rawClient(t *testing.T, srv *etcdtest.Server) *clientv3.Client {
	t.Helper()
	c, err := clientv3.New(clientv3.Config{Endpoints: []string{srv.Endpoint}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func rawGet(t *testing.T, c *clientv3.Client, key string) []byte {
	t.Helper()
	resp, err := c.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) == 0 {
		return nil
	}
	return resp.Kvs[0].Value
}

func TestEtcdStore(t *testing.T) {
	srv := etcdtest.Start(t, etcdtest.Options{})
	raw := rawClient(t, srv)

	t.Run("empty, round trip and backup", func(t *testing.T) {
		st := newEtcdStore(t, srv, "roundtrip", EtcdOptions{})
		if s, err := st.Read(ctx); s != nil || err != nil {
			t.Fatalf("Read of an empty store = %v, %v", s, err)
		}
		first := apply(t, st, 1)
		second := apply(t, st, 2)
		got, err := newEtcdStore(t, srv, "roundtrip", EtcdOptions{}).Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(second, got); diff != "" {
			t.Errorf("read back (-want +got):\n%s", diff)
		}
		backup, err := DecodeSnapshot(rawGet(t, raw, "/roundtrip/state.backup"))
		if err != nil || backup.Serial != first.Serial {
			t.Errorf("backup = %v, %v; want serial %d", backup, err, first.Serial)
		}
		if v := rawGet(t, raw, "/roundtrip/state"); !bytes.HasPrefix(v, []byte("{")) {
			t.Errorf("a small snapshot is stored as plain JSON, got %.20q", v)
		}
	})

	t.Run("stale writes are refused", func(t *testing.T) {
		a := newEtcdStore(t, srv, "stale", EtcdOptions{})
		b := newEtcdStore(t, srv, "stale", EtcdOptions{})
		apply(t, a, 1)
		if _, err := b.Read(ctx); err != nil {
			t.Fatal(err)
		}
		apply(t, a, 2) // moves the state after b read it
		prior, _ := a.Read(ctx)
		// b writes a correct successor of what it read: its revision moved.
		err := b.Write(ctx, Next(&Snapshot{Lineage: prior.Lineage, Serial: 1}, testResources(3), time.Now()), prior.Lineage, 1)
		if !errors.Is(err, ErrStale) || !strings.Contains(err.Error(), "plan is stale: it was made against serial 1 of lineage "+prior.Lineage+", but the state is now serial 2") {
			t.Errorf("stale write: err = %v", err)
		}
		// Same version, another revision (the key was rewritten with the same content).
		if _, err := b.Read(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := raw.Put(ctx, "/stale/state", string(rawGet(t, raw, "/stale/state"))); err != nil {
			t.Fatal(err)
		}
		err = b.Write(ctx, Next(prior, nil, time.Now()), prior.Lineage, prior.Serial)
		if !errors.Is(err, ErrStale) || !strings.Contains(err.Error(), "was rewritten since it was read") {
			t.Errorf("rewritten key: err = %v", err)
		}
		got, _ := a.Read(ctx)
		if got.Serial != 2 {
			t.Errorf("serial = %d after refused writes, want 2", got.Serial)
		}
	})

	t.Run("corrupt value is never overwritten", func(t *testing.T) {
		if _, err := raw.Put(ctx, "/corrupt/state", "{not json"); err != nil {
			t.Fatal(err)
		}
		st := newEtcdStore(t, srv, "corrupt", EtcdOptions{})
		_, err := st.Read(ctx)
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "etcd key /corrupt/state") || !strings.Contains(err.Error(), "/corrupt/state.backup") {
			t.Errorf("Read: err = %v", err)
		}
		err = newEtcdStore(t, srv, "corrupt", EtcdOptions{}).Write(ctx, Next(nil, nil, time.Now()), "", 0)
		if !errors.Is(err, ErrCorrupt) {
			t.Errorf("Write: err = %v", err)
		}
		if got := string(rawGet(t, raw, "/corrupt/state")); got != "{not json" {
			t.Errorf("the corrupt value was changed to %q", got)
		}
		if _, err := raw.Put(ctx, "/corrupt/state", "\x1f\x8bnot gzip"); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Read(ctx); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "bad gzip data") {
			t.Errorf("bad gzip: err = %v", err)
		}
	})

	t.Run("large snapshot is stored compressed", func(t *testing.T) {
		st := newEtcdStore(t, srv, "large", EtcdOptions{})
		want := apply(t, st, 2000)
		v := rawGet(t, raw, "/large/state")
		plain, _ := EncodeSnapshot(want)
		if !bytes.HasPrefix(v, gzipMagic) || len(plain) <= EtcdCompressThreshold {
			t.Fatalf("value of %d bytes (%d plain) is not gzip", len(v), len(plain))
		}
		t.Logf("snapshot of %d resources: %d bytes JSON, %d bytes stored", len(want.Resources), len(plain), len(v))
		got, err := newEtcdStore(t, srv, "large", EtcdOptions{}).Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
		if data, err := decodeEtcdValue(append(v, '\n')); err != nil || !bytes.Equal(data, plain) {
			t.Errorf("a value with a newline after the gzip stream (etcdctl put from a pipe): %v", err)
		}
		apply(t, st, 1) // the compressed value becomes the backup as it is
		if b := rawGet(t, raw, "/large/state.backup"); !bytes.Equal(b, v) {
			t.Errorf("backup differs from the previous value")
		}
	})

	t.Run("lock", func(t *testing.T) {
		a := newEtcdStore(t, srv, "lock", EtcdOptions{})
		b := newEtcdStore(t, srv, "lock", EtcdOptions{})
		unlock, err := a.Lock(ctx, "edgectl apply")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.Lock(ctx, "again"); err == nil || !strings.Contains(err.Error(), "already held by this store") {
			t.Errorf("second Lock on one store: err = %v", err)
		}
		_, err = b.Lock(ctx, "edgectl apply")
		if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "state is locked by pid ") ||
			!strings.Contains(err.Error(), "(edgectl apply); if that process is gone, its lock expires by itself at most 15s after it stopped (etcd key /lock/lock)") {
			t.Errorf("held lock: err = %v", err)
		}
		// A writer without the lock is refused while another holds it.
		err = b.Write(ctx, Next(nil, testResources(1), time.Now()), "", 0)
		if !errors.Is(err, ErrLocked) {
			t.Errorf("write without the lock while held: err = %v", err)
		}
		apply(t, a, 1) // the holder writes
		if err := unlock(); err != nil {
			t.Fatal(err)
		}
		if err := unlock(); err != nil {
			t.Errorf("second unlock: %v", err)
		}
		if v := rawGet(t, raw, "/lock/lock"); v != nil {
			t.Errorf("lock key left after unlock: %s", v)
		}
		unlockB, err := b.Lock(ctx, "edgectl apply")
		if err != nil {
			t.Fatalf("Lock after unlock: %v", err)
		}
		if err := unlockB(); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("a crashed holder's lock expires", func(t *testing.T) {
		crashed := newEtcdStore(t, srv, "expiry", EtcdOptions{LockTTL: time.Second})
		if _, err := crashed.Lock(ctx, "edgectl apply"); err != nil {
			t.Fatal(err)
		}
		// As if the process died: no more keep-alives, no unlock.
		crashed.lock.stop()
		crashed.lock = nil
		crashed.client.Close()
		other := newEtcdStore(t, srv, "expiry", EtcdOptions{})
		start := time.Now()
		for {
			unlock, err := other.Lock(ctx, "edgectl apply")
			if err == nil {
				t.Logf("lock of a 1s lease taken over %v after its holder stopped", time.Since(start).Round(10*time.Millisecond))
				_ = unlock()
				break
			}
			if !errors.Is(err, ErrLocked) || time.Since(start) > 5*time.Second {
				t.Fatalf("lock did not expire: %v", err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	})

	t.Run("a write after the lock expired is refused", func(t *testing.T) {
		st := newEtcdStore(t, srv, "fenced", EtcdOptions{})
		unlock, err := st.Lock(ctx, "edgectl apply")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.Read(ctx); err != nil {
			t.Fatal(err)
		}
		lease := st.lock.lease
		if _, err := raw.Revoke(ctx, lease); err != nil {
			t.Fatal(err)
		}
		// Someone else takes the lock meanwhile.
		thief := newEtcdStore(t, srv, "fenced", EtcdOptions{})
		unlockThief, err := thief.Lock(ctx, "edgectl apply")
		if err != nil {
			t.Fatal(err)
		}
		defer unlockThief()
		err = st.Write(ctx, Next(nil, testResources(1), time.Now()), "", 0)
		if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "expired while held") {
			t.Errorf("write after the lock expired: err = %v", err)
		}
		if err := unlock(); err == nil || !strings.Contains(err.Error(), "expired while held") {
			t.Errorf("unlock of an expired lock: err = %v", err)
		}
		if v := rawGet(t, raw, "/fenced/state"); v != nil {
			t.Errorf("state written: %s", v)
		}
	})

	t.Run("concurrent writers", func(t *testing.T) {
		const writers = 8
		var wg sync.WaitGroup
		var mu sync.Mutex
		completed := 0
		for i := 0; i < writers; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				st, err := NewEtcdStore(srv.Location("concurrent"), EtcdOptions{})
				if err != nil {
					t.Error(err)
					return
				}
				defer st.Close()
				unlock, err := st.Lock(ctx, "edgectl apply")
				if errors.Is(err, ErrLocked) {
					return
				}
				if err != nil {
					t.Error(err)
					return
				}
				defer unlock()
				prior, err := st.Read(ctx)
				if err != nil {
					t.Error(err)
					return
				}
				lineage, serial := prior.Version()
				if err := st.Write(ctx, Next(prior, testResources(i), time.Now()), lineage, serial); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				completed++
				mu.Unlock()
			}()
		}
		wg.Wait()
		got, err := newEtcdStore(t, srv, "concurrent", EtcdOptions{}).Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if completed == 0 || got.Serial != int64(completed) {
			t.Errorf("%d writes completed, serial %v", completed, got)
		}
	})
}

func TestEtcdUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	st, err := NewEtcdStore("etcd://"+addr+"/x", EtcdOptions{Timeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	start := time.Now()
	_, err = st.Read(ctx)
	want := "cannot reach etcd at " + addr + ": dial tcp " + addr + ": connect: connection refused"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Read: err = %v, want %q", err, want)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Read took %v", d)
	}
	if _, err := st.Lock(ctx, "edgectl apply"); err == nil || !strings.Contains(err.Error(), "cannot reach etcd") {
		t.Errorf("Lock: err = %v", err)
	}
	wctx, cancel := context.WithCancel(ctx)
	ev := <-st.Watch(wctx)
	cancel()
	if ev.Connected || ev.Err == nil || !strings.Contains(ev.Err.Error(), "cannot reach etcd") {
		t.Errorf("first watch event = %+v", ev)
	}
}

func TestEtcdTLS(t *testing.T) {
	srv := etcdtest.Start(t, etcdtest.Options{TLS: true})
	query := fmt.Sprintf("?cacert=%s&cert=%s&key=%s", srv.CACert, srv.ClientCert, srv.ClientKey)

	st, err := Open(srv.Location("tls") + query)
	if err != nil {
		t.Fatal(err)
	}
	defer st.(*EtcdStore).Close()
	apply(t, st, 1)

	// Flags win: a wrong CA in the query is replaced by the right one.
	st2, err := OpenWith(srv.Location("tls")+"?cacert=/nonexistent.pem", OpenOptions{Etcd: EtcdOptions{CACert: srv.CACert, Cert: srv.ClientCert, Key: srv.ClientKey}})
	if err != nil {
		t.Fatal(err)
	}
	defer st2.(*EtcdStore).Close()
	if s, err := st2.Read(ctx); err != nil || s.Serial != 1 {
		t.Errorf("Read with flags = %v, %v", s, err)
	}

	// Misconfigured TLS gives a message that says what is wrong.
	for name, tc := range map[string]struct {
		query, want string
	}{
		"no client certificate": {"?cacert=" + srv.CACert, "TLS: remote error: tls: "},
		"no TLS":                {"", "it serves TLS: give its CA with --etcd-cacert"},
		"wrong CA":              {"?cacert=" + srv.ClientCert + "&cert=" + srv.ClientCert + "&key=" + srv.ClientKey, "TLS handshake: tls: failed to verify certificate"},
	} {
		t.Run(name, func(t *testing.T) {
			st, err := NewEtcdStore(srv.Location("tls")+tc.query, EtcdOptions{Timeout: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			_, err = st.Read(ctx)
			if want := "cannot reach etcd at " + srv.Endpoint + ": " + tc.want; err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("err = %v, want %q", err, want)
			}
		})
	}
	st4, err := Open(srv.Location("tls") + "?cacert=" + filepath.Join(t.TempDir(), "missing.pem"))
	if err != nil {
		t.Fatal(err) // files are read on first use
	}
	if _, err := st4.Read(ctx); err == nil || !strings.Contains(err.Error(), "reading the etcd CA file") {
		t.Errorf("missing CA file: err = %v", err)
	}
}

// nextEvent returns the next watch event within d.
func nextEvent(t *testing.T, ch <-chan WatchEvent, d time.Duration, what string) WatchEvent {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatalf("%s: watch closed", what)
		}
		return ev
	case <-time.After(d):
		t.Fatalf("%s: no watch event within %v", what, d)
	}
	return WatchEvent{}
}

func TestEtcdWatch(t *testing.T) {
	srv := etcdtest.Start(t, etcdtest.Options{})
	writer := newEtcdStore(t, srv, "watch", EtcdOptions{})
	watcher := newEtcdStore(t, srv, "watch", EtcdOptions{ProbeInterval: 200 * time.Millisecond})
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ch := watcher.Watch(wctx)

	ev := nextEvent(t, ch, 2*time.Second, "start")
	if !ev.Connected || !ev.Changed || ev.Snapshot != nil || ev.Err != nil {
		t.Fatalf("first event = %+v, want the empty state", ev)
	}
	start := time.Now()
	apply(t, writer, 1)
	ev = nextEvent(t, ch, 2*time.Second, "after apply")
	if !ev.Changed || ev.Snapshot == nil || ev.Snapshot.Serial != 1 {
		t.Fatalf("event = %+v, want serial 1", ev)
	}
	t.Logf("apply to watch event: %v", time.Since(start).Round(time.Millisecond))

	// A corrupt value is reported, not delivered; the next good one is.
	raw := rawClient(t, srv)
	good := rawGet(t, raw, "/watch/state")
	if _, err := raw.Put(ctx, "/watch/state", "garbage"); err != nil {
		t.Fatal(err)
	}
	ev = nextEvent(t, ch, 2*time.Second, "corrupt")
	if ev.Changed || !errors.Is(ev.Err, ErrCorrupt) || !ev.Connected {
		t.Fatalf("event = %+v, want a corrupt-state error", ev)
	}
	if _, err := raw.Put(ctx, "/watch/state", string(good)); err != nil {
		t.Fatal(err)
	}
	ev = nextEvent(t, ch, 2*time.Second, "repaired")
	if !ev.Changed || ev.Snapshot.Serial != 1 {
		t.Fatalf("event = %+v, want serial 1 again", ev)
	}

	srv.Stop()
	ev = nextEvent(t, ch, 5*time.Second, "etcd stopped")
	if ev.Connected || ev.Err == nil || !strings.Contains(ev.Err.Error(), "cannot reach etcd at "+srv.Endpoint) {
		t.Fatalf("event = %+v, want disconnected", ev)
	}
	t.Logf("disconnected: %v", ev.Err)
	srv.Restart()
	start = time.Now()
	ev = nextEvent(t, ch, 10*time.Second, "etcd restarted")
	if !ev.Connected || ev.Changed || ev.Err != nil {
		t.Fatalf("event = %+v, want connected again (no change)", ev)
	}
	t.Logf("reconnected %v after etcd was healthy again", time.Since(start).Round(time.Millisecond))
	apply(t, writer, 2)
	ev = nextEvent(t, ch, 2*time.Second, "apply after restart")
	if !ev.Changed || ev.Snapshot.Serial != 2 {
		t.Fatalf("event = %+v, want serial 2", ev)
	}

	// A change made while the watcher cannot see etcd is delivered on reconnection.
	srv.Stop()
	nextEvent(t, ch, 5*time.Second, "etcd stopped again")
	srv.Restart()
	apply(t, writer, 3)
	for {
		ev = nextEvent(t, ch, 10*time.Second, "change made during the outage")
		if ev.Changed {
			break
		}
	}
	if ev.Snapshot.Serial != 3 {
		t.Fatalf("event = %+v, want serial 3", ev)
	}

	cancel()
	for range ch { // closes after cancel
	}
}

func TestCache(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cache", "state.json")
	if s, err := ReadCache(path); s != nil || err != nil {
		t.Fatalf("ReadCache of no file = %v, %v", s, err)
	}
	want := Next(nil, testResources(2), time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
	if err := WriteCache(path, want); err != nil {
		t.Fatal(err)
	}
	got, err := ReadCache(path)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if err := WriteFileAtomic(path, []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadCache(path); !errors.Is(err, ErrCorrupt) {
		t.Errorf("corrupt cache: err = %v", err)
	}
}
