package edge_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/edgectl/edgectl/pkg/edge"
	"github.com/edgectl/edgectl/pkg/manifest"
)

// limitObserver counts the requests each limit refused.
type limitObserver struct {
	mu     sync.Mutex
	limits map[string]int
	errors []string
}

func (o *limitObserver) Request(rec *edge.Record) {
	if rec.Status >= 500 && rec.Limit == "" {
		o.mu.Lock()
		o.errors = append(o.errors, fmt.Sprintf("%d %s", rec.Status, rec.Error))
		o.mu.Unlock()
	}
	if rec.Limit == "" {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.limits == nil {
		o.limits = map[string]int{}
	}
	o.limits[rec.Limit]++
}

func (o *limitObserver) Verified(string, string) {}

func (o *limitObserver) count(limit string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.limits[limit]
}

// edgeObserved is edgeFor with an observer.
func edgeObserved(t *testing.T, originURL string, obs edge.Observer, edit func(*manifest.ApplicationSpec)) *edgeServer {
	t.Helper()
	p := newPKI(t)
	snap := snapshotFor(p, originURL)
	if edit != nil {
		edit(snap.Resources[2].Spec.(*manifest.ApplicationSpec))
	}
	rt := compileFor(t, p, snap, obs)
	return &edgeServer{addr: serveRuntime(t, rt), rt: rt, p: p}
}

// h1Client is an HTTP/1.1 client of the "valid" partner that opens as many
// connections as it has concurrent requests.
func (e *edgeServer) h1Client() *http.Client {
	cert := e.p.clients["valid"].TLSCertificate()
	tr := &http.Transport{
		TLSClientConfig: &tls.Config{ServerName: "api.bank.test", RootCAs: e.p.edgeRoot.Pool(), Certificates: []tls.Certificate{cert}},
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp", e.addr)
		},
		TLSNextProto:        map[string]func(string, *tls.Conn) http.RoundTripper{},
		MaxIdleConnsPerHost: 1000,
	}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// h2Conn is one HTTP/2 connection of the "valid" partner.
func (e *edgeServer) h2Conn(t *testing.T) *http2.ClientConn {
	t.Helper()
	cert := e.p.clients["valid"].TLSCertificate()
	conn, err := tls.Dial("tcp", e.addr, &tls.Config{ServerName: "api.bank.test", RootCAs: e.p.edgeRoot.Pool(), Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	cc, err := (&http2.Transport{}).NewClientConn(conn)
	if err != nil {
		t.Fatal(err)
	}
	return cc
}

func intp(n int) *int { return &n }

// gatedOrigin holds every request until its gate opens, and counts the
// connections it accepts and the requests in its handler.
type gatedOrigin struct {
	*countingOrigin
	gate    chan struct{}
	active  atomic.Int64
	arrived chan struct{}
}

func newGatedOrigin(t *testing.T) *gatedOrigin {
	g := &gatedOrigin{gate: make(chan struct{}), arrived: make(chan struct{}, 1000)}
	g.countingOrigin = newCountingOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		g.active.Add(1)
		defer g.active.Add(-1)
		g.arrived <- struct{}{}
		select {
		case <-g.gate:
		case <-r.Context().Done():
			return
		}
		io.Copy(io.Discard, r.Body)
		fmt.Fprintf(w, "served %s", r.URL.Path)
	})
	t.Cleanup(g.open)
	return g
}

var openOnce sync.Map

func (g *gatedOrigin) open() {
	if _, done := openOnce.LoadOrStore(g, true); !done {
		close(g.gate)
	}
}

// waitArrived waits until n requests reached the origin's handler.
func (g *gatedOrigin) waitArrived(t *testing.T, n int) {
	t.Helper()
	for range n {
		select {
		case <-g.arrived:
		case <-time.After(10 * time.Second):
			t.Fatalf("fewer than %d requests reached the origin", n)
		}
	}
}

// TestOriginConnectionLimit: 300 concurrent clients against an application
// limited to 8 origin connections and a queue of 50: the origin never sees
// more than 8 connections, 50 requests wait and are served once the origin
// answers, and the other 242 are answered 503 with Retry-After at once,
// each counted.
func TestOriginConnectionLimit(t *testing.T) {
	const clients, maxConns, maxQueue = 300, 8, 50
	g := newGatedOrigin(t)
	obs := &limitObserver{}
	e := edgeObserved(t, g.URL, obs, func(a *manifest.ApplicationSpec) {
		a.Origin.MaxConnections, a.Origin.MaxQueue, a.Origin.QueueTimeout = intp(maxConns), intp(maxQueue), "20s"
		// Generous: 300 handshakes compete for the CPU with the dials.
		a.Origin.ConnectTimeout, a.Origin.ResponseTimeout = "10s", "20s"
	})
	client := e.h1Client()
	type result struct {
		status     int
		retryAfter string
		body       string
		err        error
	}
	results := make(chan result, clients)
	for i := range clients {
		go func() {
			resp, err := client.Get(fmt.Sprintf("https://api.bank.test/r/%d", i))
			if err != nil {
				results <- result{err: err}
				return
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			results <- result{resp.StatusCode, resp.Header.Get("Retry-After"), string(body), err}
		}()
	}
	// Until the origin answers, nothing frees a connection: every request
	// past the connections and the queue is refused.
	statuses := map[int]int{}
	for range clients - maxConns - maxQueue {
		r := <-results
		if r.err != nil {
			t.Fatal(r.err)
		}
		statuses[r.status]++
		if r.status == http.StatusServiceUnavailable && r.retryAfter != "20" {
			t.Errorf("503 with Retry-After %q, want 20 (the queue timeout)", r.retryAfter)
		}
	}
	if statuses[503] != clients-maxConns-maxQueue {
		t.Fatalf("statuses before the origin answered: %v, want %d × 503 (errors: %q)", statuses, clients-maxConns-maxQueue, obs.errors)
	}
	g.waitArrived(t, maxConns)
	if n := g.accepts.Load(); n != maxConns {
		t.Errorf("origin accepted %d connections while the requests queued, want %d", n, maxConns)
	}
	if n := edge.OpenOriginConns(e.rt, "api"); n != maxConns {
		t.Errorf("edge holds %d origin connections, want %d", n, maxConns)
	}
	g.open()
	for range maxConns + maxQueue {
		r := <-results
		if r.err != nil {
			t.Fatal(r.err)
		}
		if r.status != 200 || !strings.HasPrefix(r.body, "served /r/") {
			t.Errorf("queued request: %d %q", r.status, r.body)
		}
	}
	if n := g.accepts.Load(); n > maxConns {
		t.Errorf("origin accepted %d connections in all, limit %d", n, maxConns)
	}
	if got := obs.count(edge.LimitOriginQueueFull); got != clients-maxConns-maxQueue {
		t.Errorf("%d refusals counted as %s, want %d", got, edge.LimitOriginQueueFull, clients-maxConns-maxQueue)
	}
}

// TestOriginQueueTimeout: a request that waits in the queue longer than
// the queue timeout is answered 503 with Retry-After, and counted.
func TestOriginQueueTimeout(t *testing.T) {
	g := newGatedOrigin(t)
	obs := &limitObserver{}
	e := edgeObserved(t, g.URL, obs, func(a *manifest.ApplicationSpec) {
		a.Origin.MaxConnections, a.Origin.MaxQueue, a.Origin.QueueTimeout = intp(1), intp(5), "300ms"
		a.Origin.ResponseTimeout = "20s"
	})
	client := e.h1Client()
	first := make(chan int, 1)
	go func() {
		resp, err := client.Get("https://api.bank.test/first")
		if err != nil {
			first <- 0
			return
		}
		resp.Body.Close()
		first <- resp.StatusCode
	}()
	g.waitArrived(t, 1)
	start := time.Now()
	resp, err := client.Get("https://api.bank.test/second")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	waited := time.Since(start)
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "1" {
		t.Errorf("queued past its timeout: %d Retry-After %q, want 503 and 1", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if waited < 250*time.Millisecond || waited > 5*time.Second {
		t.Errorf("answered after %v, want about the queue timeout (300ms)", waited)
	}
	if got := obs.count(edge.LimitOriginQueueTimeout); got != 1 {
		t.Errorf("%d refusals counted as %s, want 1", got, edge.LimitOriginQueueTimeout)
	}
	g.open()
	if s := <-first; s != 200 {
		t.Errorf("first request: %d", s)
	}
}

// TestQueuedRequestCancelled: an HTTP/2 client that resets a stream while
// it waits in the queue leaves the queue at once: its place is free for
// the next request, which would otherwise be refused (queue full).
func TestQueuedRequestCancelled(t *testing.T) {
	g := newGatedOrigin(t)
	e := edgeObserved(t, g.URL, nil, func(a *manifest.ApplicationSpec) {
		a.Origin.MaxConnections, a.Origin.MaxQueue, a.Origin.QueueTimeout = intp(1), intp(1), "30s"
		a.Origin.ResponseTimeout = "30s"
	})
	cc := e.h2Conn(t)
	get := func(ctx context.Context, path string) (int, error) {
		req, _ := http.NewRequestWithContext(ctx, "GET", "https://api.bank.test"+path, nil)
		resp, err := cc.RoundTrip(req)
		if err != nil {
			return 0, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	first := make(chan int, 1)
	go func() { s, _ := get(context.Background(), "/holder"); first <- s }()
	g.waitArrived(t, 1)

	ctx, cancel := context.WithCancel(context.Background())
	queued := make(chan error, 1)
	go func() { _, err := get(ctx, "/queued"); queued <- err }()
	waitQueued(t, e, 1)
	// The queue (of one) is full.
	if s, err := get(context.Background(), "/probe"); err != nil || s != 503 {
		t.Fatalf("request with the queue full: %d %v, want 503", s, err)
	}
	cancel()
	if err := <-queued; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled request: %v", err)
	}
	// Its place in the queue is free again: the next request waits, and is
	// served once the origin answers.
	waitQueued(t, e, 0)
	third := make(chan int, 1)
	go func() { s, _ := get(context.Background(), "/third"); third <- s }()
	waitQueued(t, e, 1)
	g.open()
	if s := <-third; s != 200 {
		t.Errorf("request after the cancelled one: %d", s)
	}
	if s := <-first; s != 200 {
		t.Errorf("first request: %d", s)
	}
}

// TestCancelledExchangeClosesOriginConnection: an HTTP/2 client resets its
// stream while the origin is still working; the edge closes that origin
// connection at once (the origin sees it close long before any timeout),
// and does not pool it.
func TestCancelledExchangeClosesOriginConnection(t *testing.T) {
	closed := make(chan time.Time, 1)
	arrived := make(chan struct{}, 1)
	origin := newCountingOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		select {
		case <-r.Context().Done(): // net/http cancels it when the connection closes
			closed <- time.Now()
		case <-time.After(20 * time.Second):
		}
	})
	e := edgeObserved(t, origin.URL, nil, func(a *manifest.ApplicationSpec) { a.Origin.ResponseTimeout = "30s" })
	cc := e.h2Conn(t)
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", "https://api.bank.test/slow", nil)
	done := make(chan error, 1)
	go func() { _, err := cc.RoundTrip(req); done <- err }()
	select {
	case <-arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("the request never reached the origin")
	}
	cancelled := time.Now()
	cancel()
	select {
	case at := <-closed:
		if d := at.Sub(cancelled); d > 2*time.Second {
			t.Errorf("origin saw its connection close %v after the client reset the stream", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the origin connection stayed open after the client reset its stream")
	}
	<-done
	deadline := time.Now().Add(5 * time.Second)
	for edge.OpenOriginConns(e.rt, "api") != 0 || edge.IdleOriginConns(e.rt, "api") != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("edge still holds %d origin connections (%d idle)", edge.OpenOriginConns(e.rt, "api"), edge.IdleOriginConns(e.rt, "api"))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitQueued waits until n requests wait in the queue of the application
// "api".
func waitQueued(t *testing.T, e *edgeServer, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for edge.QueuedRequests(e.rt, "api") != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d requests queued, want %d", edge.QueuedRequests(e.rt, "api"), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
