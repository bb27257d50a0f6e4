package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/edgectl/edgectl/internal/gcfloor"
	"github.com/edgectl/edgectl/pkg/edge"
	"github.com/edgectl/edgectl/pkg/server"
)

// ServeOptions are the inputs of edgectl serve.
type ServeOptions struct {
	IO *IO
	// StateFlags choose the state store: --state and the etcd TLS flags.
	StateFlags
	// StateCache is where to keep the last snapshot served, to start from
	// when the etcd store cannot be reached (--state-cache); empty for none.
	StateCache string
	// Listen is the edge's address.
	Listen string
	// Admin is the admin listener's address; empty disables it.
	Admin string
	// AccessLog is a file path, "-" for stdout, or "" for none.
	AccessLog string
	// LogLevel is debug, info, warn or error.
	LogLevel string
	// KeyDir is the directory that relative privateKeyFile references of
	// the state resolve against (--key-dir); empty means the working
	// directory.
	KeyDir string

	HandshakeTimeout time.Duration
	HeaderTimeout    time.Duration
	IdleTimeout      time.Duration
	BodyTimeout      time.Duration
	WriteTimeout     time.Duration
	ShutdownTimeout  time.Duration
	// MaxConnections bounds the client connections the edge listener
	// holds at once.
	MaxConnections int
	// MaxConcurrentStreams bounds the HTTP/2 streams of a connection.
	MaxConcurrentStreams int
	// HeapFloorMiB keeps the garbage collector's heap goal at least this
	// many MiB above the live heap (internal/gcfloor); 0 leaves Go's
	// default.
	HeapFloorMiB int

	// Hangup delivers reload requests; nil means the process's SIGHUP.
	Hangup <-chan os.Signal
	// Ready, when set, is called once the listeners are bound (tests).
	Ready func(edge, admin net.Addr)
}

func newServeCmd(streams *IO) *cobra.Command {
	opts := &ServeOptions{IO: streams}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the mTLS edge from the deployed state, reloading when it changes",
		Long: `Serve runs the edge from the applied state: TLS and mTLS per domain, the
firewall and application rules engines, and the reverse proxy to each origin.

It reloads when the state changes (every apply) and on SIGHUP: the new
snapshot is compiled completely and swapped in atomically; one that cannot be
read or compiled is logged and the running one keeps serving.

With --state etcd://HOST:PORT/PREFIX it watches the state key in etcd, so
every node of a fleet follows one apply. When etcd cannot be reached the node
keeps serving what it has and reconnects with backoff; /state and the metric
edgectl_state_store_connected show the connection. --state-cache PATH keeps
the last snapshot served in a local file: a node started while etcd is down
starts from it (without one, it exits 1). SIGINT or
SIGTERM stops accepting connections and lets in-flight requests finish (up to
--shutdown-timeout; those still running then are cancelled), then exits 0.

Clients are held to the same timeouts on HTTP/1.x and HTTP/2: --header-timeout
for a request's headers (on HTTP/2, the first request), --body-timeout between
two reads of a request body, --write-timeout between two writes of a response
(on HTTP/2 a client that keeps its flow-control window closed stalls them),
--idle-timeout for a connection with nothing to do. A stalled HTTP/2 stream is
reset; a request whose client goes away (connection closed, stream reset) is
cancelled, and with it its origin exchange. --max-connections bounds the
client connections held at once: beyond it, new connections are closed before
their handshake.

Once the listeners are bound, one line on stderr names their addresses, the
serial and the domains ("listening on https://ADDR ..."); with --listen
127.0.0.1:0 the system picks a free port and that line tells which.

A relative privateKeyFile in the state (plan stores it relative to the
manifest root, the -f directory) is read from --key-dir, by default the
current directory; an error names the full path tried.

The admin listener answers /healthz, /readyz, /metrics (Prometheus) and /state
(JSON). The access log has one JSON line per request; certificates and keys
are never logged.`,
		Example: `  edgectl serve --state /var/lib/edgectl/state.json --listen 0.0.0.0:443
  edgectl serve --state etcd://10.0.0.5:2379/edgectl/prod --etcd-cacert etcd-ca.pem \
    --etcd-cert node.pem --etcd-key node-key.pem --state-cache /var/lib/edgectl/state-cache.json
  edgectl serve --admin "" --access-log /var/log/edgectl/access.log`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runServe(cmd.Context(), opts)
		},
	}
	f := cmd.Flags()
	addStateFlags(cmd, &opts.StateFlags)
	f.StringVar(&opts.StateCache, "state-cache", "", "keep the last snapshot served in `PATH`, and start from it when etcd cannot be reached (etcd:// state)")
	f.StringVar(&opts.Listen, "listen", "127.0.0.1:8443", "edge (HTTPS) listen `ADDRESS`")
	f.StringVar(&opts.Admin, "admin", "127.0.0.1:9901", "admin listen `ADDRESS` (/healthz, /readyz, /metrics, /state); \"\" disables it")
	f.StringVar(&opts.AccessLog, "access-log", "-", "access log `PATH`: one JSON line per request; - for stdout, \"\" for none")
	f.StringVar(&opts.KeyDir, "key-dir", "", "`DIR` that relative privateKeyFile references resolve against: the manifest root they were planned from (default: the current directory)")
	f.StringVar(&opts.LogLevel, "log-level", "info", "level of the messages on stderr: debug, info, warn or error (debug shows every refused handshake)")
	f.DurationVar(&opts.HandshakeTimeout, "handshake-timeout", server.DefaultHandshakeTimeout, "time a client has to complete the TLS handshake")
	f.DurationVar(&opts.HeaderTimeout, "header-timeout", server.DefaultHeaderTimeout, "time a client has to send a request's headers (HTTP/2: its first request)")
	f.DurationVar(&opts.IdleTimeout, "idle-timeout", server.DefaultIdleTimeout, "time an idle keep-alive connection (HTTP/2: with no open stream) stays open")
	f.DurationVar(&opts.BodyTimeout, "body-timeout", server.DefaultBodyTimeout, "time a client may take between two reads of its request body; a stalled HTTP/2 stream is reset")
	f.DurationVar(&opts.WriteTimeout, "write-timeout", server.DefaultWriteTimeout, "time a client may take between two writes of the response to it (HTTP/2: a closed flow-control window stalls them too); a stalled HTTP/2 stream is reset")
	f.DurationVar(&opts.ShutdownTimeout, "shutdown-timeout", server.DefaultShutdownTimeout, "time in-flight requests get to finish on SIGTERM; those still running then are cancelled")
	f.IntVar(&opts.MaxConnections, "max-connections", server.DefaultMaxConnections, "client connections the edge listener holds at once; more are closed before their TLS handshake (edgectl_client_connections_refused_total)")
	f.IntVar(&opts.MaxConcurrentStreams, "max-concurrent-streams", server.DefaultMaxConcurrentStreams, "HTTP/2 streams a client may have open on one connection")
	f.IntVar(&opts.HeapFloorMiB, "heap-floor", gcfloor.DefaultFloor>>20, "let the heap grow at least `MIB` above the live heap between two garbage collections: fewer collections under load for an edge with a small configuration, up to that much more memory; 0 keeps Go's default (GOGC=100), and GOGC or GOMEMLIMIT in the environment win")
	_ = cmd.RegisterFlagCompletionFunc("log-level", cobra.FixedCompletions([]string{"debug", "info", "warn", "error"}, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.MarkFlagFilename("access-log")
	_ = cmd.MarkFlagFilename("state-cache", "json")
	return cmd
}

// runServe serves until ctx is done: it checks the flags, opens the state
// store and the access log, starts the server, follows SIGHUP, announces
// the listeners and serves until shutdown.
func runServe(ctx context.Context, opts *ServeOptions) error {
	logger, err := serveLogger(opts)
	if err != nil {
		return err
	}
	store, err := openStateStore(opts.IO, opts.StateFlags)
	if err != nil {
		return err
	}
	defer closeStore(store)
	if _, remote := store.(io.Closer); opts.StateCache != "" && !remote {
		return fmt.Errorf("state store %s: --state-cache applies only to an etcd:// state store", store)
	}
	accessLog, closeLog, err := openAccessLog(opts)
	if err != nil {
		return err
	}
	defer closeLog()
	defer gcfloor.Start(uint64(opts.HeapFloorMiB) << 20)()
	stopProfile, err := startCPUProfile(os.Getenv("EDGECTL_CPUPROFILE"))
	if err != nil {
		return err
	}
	defer stopProfile()
	srv, err := server.New(ctx, server.Config{
		Store:                store,
		Listen:               opts.Listen,
		Admin:                opts.Admin,
		AccessLog:            accessLog,
		Logger:               logger,
		HandshakeTimeout:     opts.HandshakeTimeout,
		HeaderTimeout:        opts.HeaderTimeout,
		IdleTimeout:          opts.IdleTimeout,
		BodyTimeout:          opts.BodyTimeout,
		WriteTimeout:         opts.WriteTimeout,
		ShutdownTimeout:      opts.ShutdownTimeout,
		StateCache:           opts.StateCache,
		MaxConnections:       opts.MaxConnections,
		MaxConcurrentStreams: opts.MaxConcurrentStreams,
		Compile:              edge.Options{ReadFile: keyReader(opts.KeyDir), StatFile: keyStater(opts.KeyDir)},
	})
	if err != nil {
		return err
	}
	if err := srv.Listen(); err != nil {
		return err
	}
	hangup, stopSignals := hangupSignals(opts)
	defer stopSignals()
	serveCtx, stop := context.WithCancel(ctx)
	defer stop()
	go reloadOnHangup(serveCtx, hangup, srv, logger)
	announce(opts, srv)
	return serveUntilDone(ctx, opts, srv)
}

// serveLogger checks the flags and returns the logger of the server's
// messages (on stderr, at --log-level).
func serveLogger(opts *ServeOptions) (*slog.Logger, error) {
	if opts.Listen == "" {
		return nil, errors.New("--listen needs an address, such as 127.0.0.1:8443")
	}
	for name, d := range map[string]time.Duration{"handshake-timeout": opts.HandshakeTimeout, "header-timeout": opts.HeaderTimeout, "idle-timeout": opts.IdleTimeout, "body-timeout": opts.BodyTimeout, "write-timeout": opts.WriteTimeout, "shutdown-timeout": opts.ShutdownTimeout} {
		if d <= 0 {
			return nil, fmt.Errorf("--%s must be positive, got %s", name, d)
		}
	}
	for name, n := range map[string]int{"max-connections": opts.MaxConnections, "max-concurrent-streams": opts.MaxConcurrentStreams} {
		if n <= 0 {
			return nil, fmt.Errorf("--%s must be positive, got %d", name, n)
		}
	}
	if opts.HeapFloorMiB < 0 || opts.HeapFloorMiB > 1<<20 {
		return nil, fmt.Errorf("--heap-floor must be between 0 and %d MiB, got %d", 1<<20, opts.HeapFloorMiB)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(opts.LogLevel)); err != nil {
		return nil, fmt.Errorf("unknown --log-level %q: use debug, info, warn or error", opts.LogLevel)
	}
	return slog.New(slog.NewTextHandler(opts.IO.ErrOut, &slog.HandlerOptions{Level: level})), nil
}

// openAccessLog returns where access log lines go (nil for none) and how
// to close it.
func openAccessLog(opts *ServeOptions) (io.Writer, func(), error) {
	switch opts.AccessLog {
	case "":
		return nil, func() {}, nil
	case "-":
		return opts.IO.Out, func() {}, nil
	}
	f, err := os.OpenFile(opts.AccessLog, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, nil, fmt.Errorf("access log: %w", err)
	}
	return f, func() { f.Close() }, nil
}

// hangupSignals returns the reload requests: opts.Hangup, or the
// process's SIGHUP, caught from now on (before the startup line, so that a
// SIGHUP sent once it is seen never kills the process) until stop.
func hangupSignals(opts *ServeOptions) (hangup <-chan os.Signal, stop func()) {
	if opts.Hangup != nil {
		return opts.Hangup, func() {}
	}
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGHUP)
	return ch, func() { signal.Stop(ch) }
}

// reloadOnHangup reloads the state on each hangup until ctx is done.
func reloadOnHangup(ctx context.Context, hangup <-chan os.Signal, srv *server.Server, logger *slog.Logger) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-hangup:
			logger.Info("SIGHUP: reloading the state")
			srv.Reload(ctx)
		}
	}
}

// announce writes the startup line naming the listeners, the serial and
// the domains, then calls opts.Ready.
func announce(opts *ServeOptions, srv *server.Server) {
	rt := srv.Runtime()
	names := make([]string, 0, len(rt.Domains()))
	for _, d := range rt.Domains() {
		names = append(names, d.Name)
	}
	admin := "admin disabled"
	if a := srv.AdminAddr(); a != nil {
		admin = "admin on http://" + a.String()
	}
	from := ""
	if !srv.State().Store.Connected {
		from = " from the state cache " + opts.StateCache
	}
	fmt.Fprintf(opts.IO.ErrOut, "edgectl serve: listening on https://%s (serial %d%s, domains: %s); %s\n",
		srv.Addr(), rt.Serial(), from, strings.Join(names, ", "), admin)
	if opts.Ready != nil {
		opts.Ready(srv.Addr(), srv.AdminAddr())
	}
}

// serveUntilDone serves until ctx is done, noting the graceful shutdown on
// stderr when it starts and when it ends.
func serveUntilDone(ctx context.Context, opts *ServeOptions, srv *server.Server) error {
	served, noted := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(noted)
		select {
		case <-ctx.Done():
			fmt.Fprintf(opts.IO.ErrOut, "edgectl serve: shutting down: finishing in-flight requests (up to %s)\n", opts.ShutdownTimeout)
		case <-served:
		}
	}()
	err := srv.Serve(ctx)
	close(served)
	<-noted
	if err != nil {
		return err
	}
	fmt.Fprintln(opts.IO.ErrOut, "edgectl serve: stopped")
	return nil
}

// startCPUProfile writes a CPU profile of the process to path (the
// environment's EDGECTL_CPUPROFILE, for performance work: see
// docs/PERFORMANCE.md) until stop; an empty path profiles nothing.
func startCPUProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("EDGECTL_CPUPROFILE: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("EDGECTL_CPUPROFILE %s: %w", path, err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

// keyReader reads private-key files for the compiler: a relative reference
// (as plan stores it, relative to the manifest root) resolves against dir,
// or the working directory when dir is empty. Its error names the full path
// it tried.
func keyReader(dir string) func(string) ([]byte, error) {
	return func(ref string) ([]byte, error) {
		path, err := keyPath(dir, ref)
		if err != nil {
			return nil, err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			var pe *fs.PathError
			if errors.As(err, &pe) {
				err = pe.Err
			}
			if path != ref {
				return nil, fmt.Errorf("%s (%q resolved against --key-dir %s): %w", path, ref, orDot(dir), err)
			}
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return data, nil
	}
}

// keyStater stats the private-key files keyReader reads, so that a reload
// reads again only the ones that changed (edge.Options.StatFile).
func keyStater(dir string) func(string) (os.FileInfo, error) {
	return func(ref string) (os.FileInfo, error) {
		path, err := keyPath(dir, ref)
		if err != nil {
			return nil, err
		}
		return os.Stat(path)
	}
}

// keyPath resolves a privateKeyFile reference: a relative one against dir
// (the working directory when dir is empty).
func keyPath(dir, ref string) (string, error) {
	if filepath.IsAbs(ref) {
		return ref, nil
	}
	base := dir
	if base == "" {
		base = "."
	}
	return filepath.Abs(filepath.Join(base, ref))
}

func orDot(dir string) string {
	if dir == "" {
		return "., the current directory"
	}
	return dir
}
