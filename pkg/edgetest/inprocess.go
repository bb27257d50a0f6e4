package edgetest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/edgectl/edgectl/pkg/edge"
	"github.com/edgectl/edgectl/pkg/manifest"
	"github.com/edgectl/edgectl/pkg/state"
)

// Edge is an in-process edge on loopback whose applications' origins are
// recording origins.
type Edge struct {
	// Addr is the edge's HOST:PORT on 127.0.0.1.
	Addr string
	// Recorder records what the origins received.
	Recorder *Recorder
	// Domains and Origins count what the edge serves.
	Domains, Origins int

	rt      *edge.Runtime
	servers []*http.Server
}

// Target returns the edge as a test target.
func (e *Edge) Target() Target { return Target{Addr: e.Addr, Origin: e.Recorder} }

// EdgeOptions tune StartEdge.
type EdgeOptions struct {
	// Compile are the options of edge.Compile, the compiler serve uses.
	Compile edge.Options
	// ErrorLog receives the HTTP servers' errors, such as refused
	// handshakes (default: discarded; refusals are what tests provoke).
	ErrorLog *log.Logger
}

// StartEdge compiles the desired resources with the compiler that serve
// uses, after pointing every Application's origin at a recording origin of
// its own on 127.0.0.1 (keeping the URL's base path), and serves the edge on
// 127.0.0.1 with a system-chosen port. The resources are not modified.
func StartEdge(resources []state.Resource, opts EdgeOptions) (_ *Edge, err error) {
	logger := opts.ErrorLog
	if logger == nil {
		logger = log.New(io.Discard, "", 0)
	}
	e := &Edge{Recorder: NewRecorder()}
	defer func() {
		if err != nil {
			e.Close()
		}
	}()
	rs := make([]state.Resource, len(resources))
	for i, r := range resources {
		rs[i] = r
		switch spec := r.Spec.(type) {
		case *manifest.ApplicationSpec:
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				return nil, fmt.Errorf("recording origin of application %s: %w", r.Name, err)
			}
			srv := &http.Server{Handler: e.Recorder.Handler(r.Name), ErrorLog: logger, ReadHeaderTimeout: 10 * time.Second}
			e.servers = append(e.servers, srv)
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
	if e.Domains == 0 {
		return nil, errors.New("the manifests declare no Domain: give them with -f, or test a running edge with --target")
	}
	rt, err := edge.Compile(&state.Snapshot{Lineage: "edgectl-test", Resources: rs}, opts.Compile)
	if err != nil {
		return nil, fmt.Errorf("compiling the in-process edge: %w", err)
	}
	e.rt = rt
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("in-process edge: %w", err)
	}
	srv := &http.Server{Handler: rt, TLSConfig: rt.TLSConfig(), ConnContext: edge.ConnContext, ErrorLog: logger, ReadHeaderTimeout: 10 * time.Second}
	e.servers = append(e.servers, srv)
	go srv.ServeTLS(ln, "", "") //nolint:errcheck // Close ends it
	e.Addr = ln.Addr().String()
	return e, nil
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

// Close stops the edge and its origins.
func (e *Edge) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	for _, s := range e.servers {
		if s.Shutdown(ctx) != nil {
			s.Close()
		}
	}
	if e.rt != nil {
		e.rt.Close()
	}
}
