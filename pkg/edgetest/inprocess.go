package edgetest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/edgectl/edgectl/pkg/edge"
	"github.com/edgectl/edgectl/pkg/manifest"
	"github.com/edgectl/edgectl/pkg/server"
	"github.com/edgectl/edgectl/pkg/state"
)

// Edge is an in-process edge on loopback whose applications' origins are
// recording origins. It is served by pkg/server, exactly as edgectl serve
// serves: the same handshakes, HTTP/1.x loop, HTTP/2 settings, timeouts
// and limits.
type Edge struct {
	// Addr is the edge's HOST:PORT on 127.0.0.1.
	Addr string
	// Recorder records what the origins received.
	Recorder *Recorder
	// Domains and Origins count what the edge serves.
	Domains, Origins int

	origins []*http.Server
	cancel  context.CancelFunc
	served  chan error
}

// Target returns the edge as a test target.
func (e *Edge) Target() Target { return Target{Addr: e.Addr, Origin: e.Recorder} }

// EdgeOptions tune StartEdge.
type EdgeOptions struct {
	// Compile are the options of edge.Compile, the compiler serve uses.
	Compile edge.Options
	// Logger receives the edge's messages, such as refused handshakes at
	// debug level (default: discarded; refusals are what tests provoke).
	Logger *slog.Logger
}

// shutdownTimeout bounds Close: the cases' requests are done by then.
const shutdownTimeout = time.Second

// StartEdge compiles the desired resources with the compiler that serve
// uses, after pointing every Application's origin at a recording origin of
// its own on 127.0.0.1 (keeping the URL's base path), and serves the edge
// with pkg/server on 127.0.0.1 with a system-chosen port, with serve's
// default timeouts and limits. The resources are not modified.
func StartEdge(resources []state.Resource, opts EdgeOptions) (_ *Edge, err error) {
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	e := &Edge{Recorder: NewRecorder()}
	defer func() {
		if err != nil {
			e.Close()
		}
	}()
	rs, err := e.startOrigins(resources, logger)
	if err != nil {
		return nil, err
	}
	if e.Domains == 0 {
		return nil, errors.New("the manifests declare no Domain: give them with -f, or test a running edge with --target")
	}
	srv, err := server.New(context.Background(), server.Config{
		Store:           server.FixedState("built from the manifests", &state.Snapshot{Lineage: "edgectl-test", Resources: rs}),
		Listen:          "127.0.0.1:0",
		Logger:          logger,
		ShutdownTimeout: shutdownTimeout,
		PollInterval:    -1, // the desired state does not change
		Compile:         opts.Compile,
	})
	if err != nil {
		return nil, fmt.Errorf("in-process edge: %w", err)
	}
	if err := srv.Listen(); err != nil {
		return nil, fmt.Errorf("in-process edge: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel, e.served = cancel, make(chan error, 1)
	go func() { e.served <- srv.Serve(ctx) }()
	e.Addr = srv.Addr().String()
	return e, nil
}

// startOrigins starts a recording origin per Application and returns the
// resources with each Application's origin pointing at its own.
func (e *Edge) startOrigins(resources []state.Resource, logger *slog.Logger) ([]state.Resource, error) {
	errorLog := slog.NewLogLogger(logger.Handler(), slog.LevelWarn)
	rs := make([]state.Resource, len(resources))
	for i, r := range resources {
		rs[i] = r
		switch spec := r.Spec.(type) {
		case *manifest.ApplicationSpec:
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				return nil, fmt.Errorf("recording origin of application %s: %w", r.Name, err)
			}
			srv := &http.Server{Handler: e.Recorder.Handler(r.Name), ErrorLog: errorLog, ReadHeaderTimeout: 10 * time.Second}
			e.origins = append(e.origins, srv)
			go srv.Serve(ln) //nolint:errcheck // Close ends it
			n := *spec
			n.Origin.URL = recordingURL(spec.Origin.URL, ln.Addr().String())
			n.Origin.TLS = nil
			rs[i].Spec = &n
			e.Origins++
		case *manifest.DomainSpec:
			e.Domains++
		}
	}
	return rs, nil
}

// recordingURL replaces the scheme and host of an origin URL with those of
// a recording origin, keeping the base path.
func recordingURL(origin, addr string) string {
	u, err := url.Parse(origin)
	if err != nil {
		return "http://" + addr
	}
	u.Scheme, u.Host, u.User = "http", addr, nil
	return u.String()
}

// Close stops the edge (letting requests in flight finish, as serve does
// on SIGTERM) and its origins.
func (e *Edge) Close() {
	if e.cancel != nil {
		e.cancel()
		<-e.served
		e.cancel = nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	for _, s := range e.origins {
		if s.Shutdown(ctx) != nil {
			s.Close()
		}
	}
}
