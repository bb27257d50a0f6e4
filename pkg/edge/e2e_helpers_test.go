package edge_test

import (
	"bufio"
	"crypto/tls"
	"io"
	"log"
	"net"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/edgectl/edgectl/pkg/edge"
	"github.com/edgectl/edgectl/pkg/state"
)

func bufioReader(c net.Conn) *bufio.Reader { return bufio.NewReader(c) }

func quietLog() *log.Logger { return log.New(io.Discard, "", 0) }

// compileFor compiles snap with the test PKI's edge key (the snapshot names
// it EDGE_KEY) and obs as the Observer when not nil.
func compileFor(t testing.TB, p *pkiSet, snap *state.Snapshot, obs edge.Observer) *edge.Runtime {
	t.Helper()
	rt, err := edge.Compile(snap, edge.Options{Observer: obs, LookupEnv: func(k string) (string, bool) {
		return string(p.server.KeyPEM()), k == "EDGE_KEY"
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rt.Close)
	return rt
}

// serveRuntime serves rt over TLS on a loopback port and returns the address.
func serveRuntime(t testing.TB, rt *edge.Runtime) string {
	return serveTLS(t, rt, rt.TLSConfig())
}

// serveSwappable serves whichever runtime cur holds, as pkg/server does,
// and returns the listener's address.
func serveSwappable(t testing.TB, cur *atomic.Pointer[edge.Runtime]) string {
	return serveTLS(t,
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { cur.Load().ServeHTTP(w, r) }),
		&tls.Config{GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) { return cur.Load().ConfigForClient(h) }})
}

func serveTLS(t testing.TB, h http.Handler, cfg *tls.Config) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, TLSConfig: cfg, ConnContext: edge.ConnContext, ErrorLog: quietLog()}
	go srv.ServeTLS(ln, "", "")
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}
