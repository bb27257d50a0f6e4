package edge_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/edgectl/edgectl/pkg/edge"
	"github.com/edgectl/edgectl/pkg/server"
	"github.com/edgectl/edgectl/pkg/state"
)

// The end-to-end tests serve their snapshots through pkg/server, exactly as
// edgectl serve and edgectl test do: its TLS handshakes, its HTTP/1.x loop,
// its HTTP/2 server, its timeouts and limits, its metrics and access log.

func bufioReader(c net.Conn) *bufio.Reader { return bufio.NewReader(c) }

// testShutdownTimeout bounds how long stopping a test's edge waits for
// requests still running (a test that left a stalled exchange behind).
const testShutdownTimeout = time.Second

// keyOptions are the compile options of a snapshot of the test PKI: the
// snapshot names the edge's key EDGE_KEY.
func keyOptions(p *pkiSet) edge.Options {
	key := string(p.server.KeyPEM())
	return edge.Options{LookupEnv: func(k string) (string, bool) { return key, k == "EDGE_KEY" }}
}

// serveSnapshot serves snap, compiled with the test PKI's edge key, with
// pkg/server on a loopback port until the test ends.
func serveSnapshot(t testing.TB, p *pkiSet, snap *state.Snapshot, opts ...serveOption) *edgeServer {
	t.Helper()
	e := serveStore(t, server.FixedState("the test snapshot", snap), keyOptions(p), opts...)
	e.p = p
	return e
}

// serveOption changes the server's configuration.
type serveOption func(*server.Config)

// withAccessLog sends the server's access log to l.
func withAccessLog(l *accessLog) serveOption {
	return func(c *server.Config) { c.AccessLog = l }
}

// serveStore serves the snapshot of store with pkg/server on a loopback
// port until the test ends (or stop is called). The store is not polled:
// a test swaps runtimes with reload.
func serveStore(t testing.TB, store state.Store, compile edge.Options, opts ...serveOption) *edgeServer {
	t.Helper()
	cfg := server.Config{
		Store:           store,
		Listen:          "127.0.0.1:0",
		PollInterval:    -1,
		ShutdownTimeout: testShutdownTimeout,
		Compile:         compile,
	}
	for _, o := range opts {
		o(&cfg)
	}
	srv, err := server.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx) }()
	e := &edgeServer{addr: srv.Addr().String(), srv: srv}
	var once sync.Once
	e.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-served; err != nil {
				t.Errorf("serve: %v", err)
			}
		})
	}
	t.Cleanup(e.stop)
	return e
}

// runtime is the runtime the edge serves new requests with.
func (e *edgeServer) runtime() *edge.Runtime { return e.srv.Runtime() }

// reload makes the edge compile its store's snapshot again and swap it in,
// as a reload of edgectl serve does.
func (e *edgeServer) reload(t testing.TB) {
	t.Helper()
	if err := e.srv.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// swapStore is a state store whose snapshot a test replaces.
type swapStore struct {
	mu   sync.Mutex
	snap *state.Snapshot
}

var _ state.Store = (*swapStore)(nil)

func newSwapStore(snap *state.Snapshot) *swapStore { return &swapStore{snap: snap} }

func (s *swapStore) set(snap *state.Snapshot) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.snap = snap
}

func (s *swapStore) Read(context.Context) (*state.Snapshot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.snap, nil
}

func (s *swapStore) Write(context.Context, *state.Snapshot, string, int64) error {
	panic("the test store is not written")
}

func (s *swapStore) Lock(context.Context, string) (func() error, error) {
	panic("the test store is not locked")
}

func (s *swapStore) String() string { return "the test store" }

// accessLog collects the lines of a server's access log.
type accessLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *accessLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// accessRecord is the part of an access-log line the tests read.
type accessRecord struct {
	Status         int    `json:"status"`
	FirewallAction string `json:"firewall_action"`
	Error          string `json:"error"`
	Limit          string `json:"limit"`
}

// records stops the edge, which lets the requests in flight finish and
// writes the whole access log, and returns the log's lines.
func (e *edgeServer) records(t testing.TB, l *accessLog) []accessRecord {
	t.Helper()
	e.stop()
	l.mu.Lock()
	defer l.mu.Unlock()
	var recs []accessRecord
	dec := json.NewDecoder(bytes.NewReader(l.buf.Bytes()))
	for dec.More() {
		var r accessRecord
		if err := dec.Decode(&r); err != nil {
			t.Fatalf("access log: %v\n%s", err, l.buf.Bytes())
		}
		recs = append(recs, r)
	}
	return recs
}
