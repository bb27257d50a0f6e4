package server

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgectl/edgectl/internal/park"
	"github.com/edgectl/edgectl/pkg/edge"
	"github.com/edgectl/edgectl/pkg/server/h1"
	"github.com/edgectl/edgectl/pkg/server/h2"
	"github.com/edgectl/edgectl/pkg/state"
)

// Defaults of Config.
const (
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultHeaderTimeout    = 10 * time.Second
	DefaultIdleTimeout      = 120 * time.Second
	DefaultBodyTimeout      = 60 * time.Second
	DefaultWriteTimeout     = 60 * time.Second
	DefaultShutdownTimeout  = 30 * time.Second
	DefaultMaxHeaderBytes   = 64 << 10
	DefaultPollInterval     = 2 * time.Second
	// DefaultQuietRelease is how long the edge stays without a new
	// connection or request before it returns freed memory to the system
	// (Config.QuietRelease).
	DefaultQuietRelease = 5 * time.Second
	// DefaultMaxConnections is the client connections the edge listener
	// holds at once (serve --max-connections). Each may hold an origin
	// connection too: the process needs about twice as many file
	// descriptors, which Go's raise of the soft limit to the hard one
	// usually covers (systemd's default hard limit is 524288); Listen
	// warns when it does not.
	DefaultMaxConnections = 10000
	// DefaultMaxConcurrentStreams is the HTTP/2 streams a client may have
	// open on one connection, the least RFC 9113 recommends.
	DefaultMaxConcurrentStreams = 100
)

// ErrNothingToServe means the state store is empty: nothing was applied.
var ErrNothingToServe = errors.New("nothing to serve")

// Config is what a Server needs. Zero durations take the defaults.
type Config struct {
	// Store is the state store to serve from and watch.
	Store state.Store
	// Listen is the edge's TCP address, such as 127.0.0.1:8443.
	Listen string
	// Admin is the admin listener's address; empty disables it.
	Admin string
	// AccessLog receives one JSON line per request; nil disables it.
	AccessLog io.Writer
	// Logger receives the server's own messages (default: discard).
	Logger *slog.Logger

	HandshakeTimeout time.Duration
	// HeaderTimeout bounds the reading of an HTTP/1.x request's headers,
	// and the wait for an HTTP/2 connection's first request.
	HeaderTimeout time.Duration
	// IdleTimeout bounds the wait for the next request on an HTTP/1.x
	// connection, and the time an HTTP/2 connection stays open with no
	// stream.
	IdleTimeout time.Duration
	// BodyTimeout bounds each read of a request body, and WriteTimeout each
	// write of a response (the waits between two successive reads or
	// writes, as nginx's client_body_timeout and send_timeout), on HTTP/1.x
	// and HTTP/2 alike; an HTTP/2 client that keeps its flow-control window
	// closed stalls the writes of its streams (see h2.go).
	BodyTimeout     time.Duration
	WriteTimeout    time.Duration
	ShutdownTimeout time.Duration
	MaxHeaderBytes  int
	// MaxConnections bounds the client connections the edge listener holds
	// at once, from their acceptance to their close (handshake included).
	// A connection accepted over it is closed at once, before its
	// handshake, and counted in edgectl_client_connections_refused_total.
	// Zero means DefaultMaxConnections; negative, no limit.
	MaxConnections int
	// MaxConcurrentStreams bounds the HTTP/2 streams open on a connection;
	// zero means DefaultMaxConcurrentStreams.
	MaxConcurrentStreams int
	// PollInterval is how often a store that is not a state.Watcher is
	// read for a new snapshot; negative disables polling (Reload remains).
	// The file and etcd stores are Watchers: they tell of changes
	// themselves.
	PollInterval time.Duration
	// QuietRelease is how long the edge must go without a new connection
	// or request, after serving some, before it collects garbage and
	// returns the freed memory to the system (release.go); zero means
	// DefaultQuietRelease, negative never.
	QuietRelease time.Duration
	// StateCache is a file that keeps the last snapshot served, written
	// after each load from the store and each reload; empty for none. When
	// a store that holds a connection (it implements io.Closer, as the etcd
	// store does) cannot be reached at startup, the server starts from this
	// file, if it exists, and keeps watching the store.
	StateCache string

	// Compile carries ReadFile, LookupEnv and Now to edge.Compile; the
	// server sets its TicketSecret and Observer.
	Compile edge.Options

	// handled, when set, is called after each event of a watched store
	// has been handled (tests synchronise on it; see export_test.go).
	handled func(state.WatchEvent)
	// handler, when set, answers the edge's requests instead of the
	// runtime (tests that need a handler of their own behind the server's
	// connection handling; see export_test.go).
	handler http.Handler
}

// Server serves the edge from a state store. Create it with New, bind its
// sockets with Listen, then call Serve.
type Server struct {
	cfg     Config
	log     *slog.Logger
	cur     atomic.Pointer[edge.Runtime]
	metrics *metrics
	access  *accessLog
	compile edge.Options

	// The edge: TLS handshakes in serveConn, then HTTP/1.x in h1 or
	// HTTP/2 in h2.
	tlsConfig       *tls.Config
	h1              *h1.Server
	h2              *h2.Server
	admin           *http.Server
	edgeLn, adminLn net.Listener
	// lastLimitWarning is when the connection limit was last logged
	// (UnixNano), to log it at most every 10 s.
	lastLimitWarning atomic.Int64

	reloadMu sync.Mutex // serializes reloads

	mu     sync.Mutex // guards status
	status status

	draining atomic.Bool

	// activity counts accepted connections and requests, and releases
	// the memory releases (release.go).
	activity atomic.Int64
	releases atomic.Int64
	// idled counts the connections that went idle (connIdle).
	idled atomic.Int64
	// connClosed is the done function of h1's and h2's ServeConnThen:
	// the connection is no longer open.
	connClosed func(error)
}

// status is what the admin endpoints report about loading.
type status struct {
	appliedAt  time.Time
	lastReload time.Time
	lastError  string
	store      storeStatus
}

// storeStatus is the state store's connection as last observed.
type storeStatus struct {
	connected bool
	revision  int64 // the state key's revision last seen (watched stores)
	lastError string
}

// New reads and compiles the store's snapshot. An empty store is an error
// wrapping ErrNothingToServe; an unreadable or uncompilable snapshot is an
// error naming the reason (for a compile error, each resource).
func New(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Store == nil {
		return nil, errors.New("server: no state store")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&cfg.HandshakeTimeout, DefaultHandshakeTimeout)
	def(&cfg.HeaderTimeout, DefaultHeaderTimeout)
	def(&cfg.IdleTimeout, DefaultIdleTimeout)
	def(&cfg.BodyTimeout, DefaultBodyTimeout)
	def(&cfg.WriteTimeout, DefaultWriteTimeout)
	def(&cfg.ShutdownTimeout, DefaultShutdownTimeout)
	def(&cfg.PollInterval, DefaultPollInterval)
	def(&cfg.QuietRelease, DefaultQuietRelease)
	if cfg.MaxHeaderBytes == 0 {
		cfg.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if cfg.MaxConnections == 0 {
		cfg.MaxConnections = DefaultMaxConnections
	}
	if cfg.MaxConcurrentStreams <= 0 {
		cfg.MaxConcurrentStreams = DefaultMaxConcurrentStreams
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, log: cfg.Logger, metrics: newMetrics()}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, fmt.Errorf("server: ticket secret: %w", err)
	}
	s.compile = cfg.Compile
	// One secret for the process: reloads keep the sessions of unchanged domains.
	s.compile.TicketSecret = secret
	s.compile.Observer = (*observer)(s)

	rt, snap, err := s.load(ctx)
	if err != nil {
		return nil, err
	}
	s.install(rt, snap)
	s.metrics.setConnected(s.status.store.connected)
	if cfg.AccessLog != nil {
		s.access = newAccessLog(cfg.AccessLog, s.metrics.dropped.Inc)
	}
	return s, nil
}

// load reads and compiles the store's snapshot for startup. When a
// watched store cannot be reached, it loads the state cache instead, if
// there is one.
func (s *Server) load(ctx context.Context) (*edge.Runtime, *state.Snapshot, error) {
	cfg := &s.cfg
	// A store that holds a connection may not answer for a while.
	_, remote := cfg.Store.(io.Closer)
	fromCache := false
	snap, err := cfg.Store.Read(ctx)
	switch {
	case err == nil:
		s.status.store.connected = true
	case remote && !errors.Is(err, state.ErrCorrupt) && ctx.Err() == nil:
		// The store did not answer: a damaged state never falls back.
		s.status.store.lastError = err.Error()
		if snap, err = s.loadCache(err); err != nil {
			return nil, nil, err
		}
		fromCache = true
	default:
		return nil, nil, fmt.Errorf("cannot serve the state %s: %w", cfg.Store, err)
	}
	if snap == nil {
		return nil, nil, fmt.Errorf("%w: the state %s is empty; run edgectl apply first", ErrNothingToServe, cfg.Store)
	}
	source := fmt.Sprintf("the state %s", cfg.Store)
	if fromCache {
		source = "the state cache " + cfg.StateCache
	}
	rt, err := edge.Compile(snap, s.compile)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot serve serial %d of %s: %w", snap.Serial, source, err)
	}
	if len(rt.Domains()) == 0 {
		rt.Close()
		return nil, nil, fmt.Errorf("%w: serial %d of %s has no Domain", ErrNothingToServe, snap.Serial, source)
	}
	if !fromCache {
		s.writeCache(snap)
	}
	return rt, snap, nil
}

// loadCache returns the state cache's snapshot when the store could not be
// reached at startup (readErr says why), or an error naming both reasons.
func (s *Server) loadCache(readErr error) (*state.Snapshot, error) {
	cfg := &s.cfg
	if cfg.StateCache == "" {
		return nil, fmt.Errorf("cannot serve the state %s: %w; and there is no state cache to start from (--state-cache)", cfg.Store, readErr)
	}
	snap, err := state.ReadCache(cfg.StateCache)
	switch {
	case err != nil:
		return nil, fmt.Errorf("cannot serve the state %s: %w; and the state cache cannot be used: %w", cfg.Store, readErr, err)
	case snap == nil:
		return nil, fmt.Errorf("cannot serve the state %s: %w; and the state cache %s does not exist yet (it is written once the node has loaded the state)", cfg.Store, readErr, cfg.StateCache)
	}
	s.log.Warn("the state store cannot be reached: starting from the state cache, and watching the store until it answers",
		"store", cfg.Store.String(), "cache", cfg.StateCache, "serial", snap.Serial, "appliedAt", snap.AppliedAt.UTC().Format(time.RFC3339), "reason", readErr.Error())
	return snap, nil
}

// install makes rt the runtime new requests use and records it.
func (s *Server) install(rt *edge.Runtime, snap *state.Snapshot) *edge.Runtime {
	old := s.cur.Swap(rt)
	s.metrics.serial.Set(float64(rt.Serial()))
	s.metrics.domains.Set(float64(len(rt.Domains())))
	s.mu.Lock()
	s.status.appliedAt = snap.AppliedAt
	s.mu.Unlock()
	return old
}

// Runtime returns the runtime new requests are served by.
func (s *Server) Runtime() *edge.Runtime { return s.cur.Load() }

// Listen binds the edge listener and, unless disabled, the admin listener.
func (s *Server) Listen() error {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("edge listener: %w", err)
	}
	if s.cfg.Admin != "" {
		aln, err := net.Listen("tcp", s.cfg.Admin)
		if err != nil {
			ln.Close()
			return fmt.Errorf("admin listener: %w", err)
		}
		s.adminLn = aln
	}
	tlsConfig := &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"h2", "http/1.1"},
		// Every handshake asks the runtime current at that moment.
		GetConfigForClient: func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			return s.cur.Load().ConfigForClient(hello)
		},
	}
	s.edgeLn = ln
	s.tlsConfig = tlsConfig
	s.connClosed = func(error) { s.metrics.open.Add(-1) }
	s.h1 = &h1.Server{
		Handler:           http.HandlerFunc(s.serveEdge),
		ConnContext:       edge.ConnContext,
		ConnIdle:          s.connIdle,
		ReadHeaderTimeout: s.cfg.HeaderTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		BodyReadTimeout:   s.cfg.BodyTimeout,
		WriteTimeout:      s.cfg.WriteTimeout,
		MaxHeaderBytes:    s.cfg.MaxHeaderBytes,
		ErrorLog:          s.log.Error,
	}
	// HTTP/2 connections: their timeouts and limits are in h2.go.
	s.h2 = s.newH2()
	s.checkFileLimit()
	if s.adminLn != nil {
		s.admin = &http.Server{
			Handler:           s.adminHandler(),
			ReadHeaderTimeout: 5 * time.Second,
			IdleTimeout:       s.cfg.IdleTimeout,
			ErrorLog:          log.New(&errorLog{log: s.log.With("listener", "admin")}, "", 0),
		}
	}
	return nil
}

func (s *Server) countHandshake(reason string) { s.metrics.handshakes.WithLabelValues(reason).Inc() }

// Addr is the edge listener's address (after Listen).
func (s *Server) Addr() net.Addr { return s.edgeLn.Addr() }

// AdminAddr is the admin listener's address, or nil when it is disabled.
func (s *Server) AdminAddr() net.Addr {
	if s.adminLn == nil {
		return nil
	}
	return s.adminLn.Addr()
}

// serveEdge runs a request on the runtime current when it arrived, to the
// end, whatever reloads happen meanwhile.
func (s *Server) serveEdge(w http.ResponseWriter, r *http.Request) {
	s.activity.Add(1)
	if s.cfg.handler != nil {
		s.cfg.handler.ServeHTTP(w, r)
		return
	}
	s.cur.Load().ServeHTTP(w, r)
}

// Serve serves until ctx is cancelled, watching the state store, then
// shuts down gracefully: it stops accepting, lets in-flight requests finish
// (up to ShutdownTimeout), and flushes the access log. Listen must have
// been called.
func (s *Server) Serve(ctx context.Context) error {
	if s.h1 == nil {
		return errors.New("server: Serve before Listen")
	}
	watchCtx, stopWatch := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); s.watch(watchCtx) }()
	go func() { defer wg.Done(); s.releaseWhenQuiet(watchCtx) }()

	// Idle connections wait without a goroutine (internal/park; Linux
	// only: elsewhere they wait in theirs). Closed after the drain: it
	// wakes, and so closes, whatever is still parked.
	if p, err := park.New(); err == nil {
		s.h1.Parker, s.h2.Parker = p, p
		s.metrics.parker.Store(p)
		defer p.Close()
	} else if !errors.Is(err, errors.ErrUnsupported) {
		s.log.Warn("idle connections will wait with a goroutine each", "error", err.Error())
	}

	errc := make(chan error, 2)
	go func() { errc <- s.acceptLoop(s.edgeLn) }()
	if s.admin != nil {
		go func() { errc <- s.admin.Serve(s.adminLn) }()
	}
	var serveErr error
	select {
	case <-ctx.Done():
	case err := <-errc:
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			serveErr = err
		}
	}
	stopWatch()
	wg.Wait()
	s.shutdown()
	return serveErr
}

// shutdown drains the edge, then stops the admin listener and flushes the
// access log. Requests still running after ShutdownTimeout are cut off
// (and that is logged).
func (s *Server) shutdown() {
	s.draining.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	s.edgeLn.Close()
	h2done := make(chan error, 1)
	go func() { h2done <- s.h2.Shutdown(ctx) }()
	err1 := s.h1.Shutdown(ctx)
	if err2 := <-h2done; err1 != nil || err2 != nil {
		s.log.Warn("requests still running after the shutdown timeout were cut off", "timeout", s.cfg.ShutdownTimeout.String())
		s.h2.Close()
		s.h1.Close()
	}
	if s.admin != nil {
		actx, acancel := context.WithTimeout(context.Background(), time.Second)
		if s.admin.Shutdown(actx) != nil {
			s.admin.Close()
		}
		acancel()
	}
	if s.access != nil {
		s.access.Close()
	}
	s.cur.Load().Close()
}

// observer is the edge.Observer of the server's runtimes: metrics and the
// access log.
type observer Server

var _ edge.Observer = (*observer)(nil)

func (o *observer) Request(rec *edge.Record) {
	o.metrics.request(rec)
	if o.access != nil {
		o.access.log(rec.Start, rec)
	}
}

func (o *observer) Verified(domain, verify string) { o.metrics.verified(domain, verify) }
