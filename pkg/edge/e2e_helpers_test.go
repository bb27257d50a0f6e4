package edge_test

import (
	"bufio"
	"crypto/tls"
	"io"
	"log"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/edgectl/edgectl/pkg/edge"
	"github.com/edgectl/edgectl/pkg/server/h1"
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

// serveTLS serves h as pkg/server does: the TLS handshake first, then
// HTTP/2 connections to net/http and HTTP/1.x to pkg/server/h1.
func serveTLS(t testing.TB, h http.Handler, cfg *tls.Config) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg = cfg.Clone()
	if len(cfg.NextProtos) == 0 {
		cfg.NextProtos = []string{"h2", "http/1.1"}
	}
	h2ln := &chanListener{addr: ln.Addr(), ch: make(chan net.Conn), done: make(chan struct{})}
	h2 := &http.Server{Handler: h, TLSConfig: cfg, ConnContext: edge.ConnContext, ErrorLog: quietLog()}
	h1s := &h1.Server{Handler: h, ConnContext: edge.ConnContext}
	go h2.Serve(h2ln)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				tc := tls.Server(c, cfg)
				if tc.Handshake() != nil {
					c.Close()
					return
				}
				if tc.ConnectionState().NegotiatedProtocol == "h2" {
					select {
					case h2ln.ch <- tc:
					case <-h2ln.done:
						tc.Close()
					}
					return
				}
				h1s.ServeConn(tc)
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); h2.Close(); h1s.Close() })
	return ln.Addr().String()
}

// chanListener hands HTTP/2 connections to http.Server.
type chanListener struct {
	addr net.Addr
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return l.addr }
