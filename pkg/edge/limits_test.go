package edge_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/edgectl/edgectl/internal/tooltest"
	"github.com/edgectl/edgectl/pkg/edge"
	"github.com/edgectl/edgectl/pkg/manifest"
)

// edgeLogged is edgeFor with the access log sent to l.
func edgeLogged(t *testing.T, originURL string, l *accessLog, edit func(*manifest.ApplicationSpec)) *edgeServer {
	t.Helper()
	p := newPKI(t)
	snap := snapshotFor(p, originURL)
	if edit != nil {
		edit(snap.Resources[2].Spec.(*manifest.ApplicationSpec))
	}
	return serveSnapshot(t, p, snap, withAccessLog(l))
}

// countLimits stops the edge and counts its access log's requests by the
// limit that refused them.
func (e *edgeServer) countLimits(t *testing.T, l *accessLog) map[string]int {
	t.Helper()
	n := map[string]int{}
	for _, r := range e.records(t, l) {
		if r.Limit != "" {
			n[r.Limit]++
		}
	}
	return n
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
func (e *edgeServer) h2Conn(t testing.TB) *http2.ClientConn {
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
	log := &accessLog{}
	e := edgeLogged(t, g.URL, log, func(a *manifest.ApplicationSpec) {
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
		t.Fatalf("statuses before the origin answered: %v, want %d × 503", statuses, clients-maxConns-maxQueue)
	}
	g.waitArrived(t, maxConns)
	if n := g.accepts.Load(); n != maxConns {
		t.Errorf("origin accepted %d connections while the requests queued, want %d", n, maxConns)
	}
	if n := edge.OpenOriginConns(e.runtime(), "api"); n != maxConns {
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
	if got := e.countLimits(t, log)[edge.LimitOriginQueueFull]; got != clients-maxConns-maxQueue {
		t.Errorf("%d refusals counted as %s, want %d", got, edge.LimitOriginQueueFull, clients-maxConns-maxQueue)
	}
}

// TestOriginQueueTimeout: a request that waits in the queue longer than
// the queue timeout is answered 503 with Retry-After, and counted.
func TestOriginQueueTimeout(t *testing.T) {
	g := newGatedOrigin(t)
	log := &accessLog{}
	e := edgeLogged(t, g.URL, log, func(a *manifest.ApplicationSpec) {
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
	g.open()
	if s := <-first; s != 200 {
		t.Errorf("first request: %d", s)
	}
	if got := e.countLimits(t, log)[edge.LimitOriginQueueTimeout]; got != 1 {
		t.Errorf("%d refusals counted as %s, want 1", got, edge.LimitOriginQueueTimeout)
	}
}

// TestQueuedRequestCancelled: an HTTP/2 client that resets a stream while
// it waits in the queue leaves the queue at once: its place is free for
// the next request, which would otherwise be refused (queue full).
func TestQueuedRequestCancelled(t *testing.T) {
	g := newGatedOrigin(t)
	e := edgeFor(t, g.URL, func(a *manifest.ApplicationSpec) {
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
	e := edgeFor(t, origin.URL, func(a *manifest.ApplicationSpec) { a.Origin.ResponseTimeout = "30s" })
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
	for edge.OpenOriginConns(e.runtime(), "api") != 0 || edge.IdleOriginConns(e.runtime(), "api") != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("edge still holds %d origin connections (%d idle)", edge.OpenOriginConns(e.runtime(), "api"), edge.IdleOriginConns(e.runtime(), "api"))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitQueued waits until n requests wait in the queue of the application
// "api".
func waitQueued(t *testing.T, e *edgeServer, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for edge.QueuedRequests(e.runtime(), "api") != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d requests queued, want %d", edge.QueuedRequests(e.runtime(), "api"), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// curl runs curl as the "valid" partner against api.bank.test on the
// edge, with args before the URL of path, and returns its output (-w
// writes the status last).
func (e *edgeServer) curl(t *testing.T, path string, args ...string) string {
	t.Helper()
	bin := tooltest.Path(t, "curl", "curl")
	dir := t.TempDir()
	files := map[string][]byte{
		"ca.pem":   e.p.edgeRoot.Cert.Raw,
		"cert.pem": e.p.clients["valid"].ChainPEM(),
		"key.pem":  e.p.clients["valid"].KeyPEM(),
	}
	files["ca.pem"] = pemCert(e.p.edgeRoot.Cert.Raw)
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	_, port, _ := net.SplitHostPort(e.addr)
	all := append([]string{"-sS", "--http1.1", "--max-time", "20",
		"--cacert", filepath.Join(dir, "ca.pem"), "--cert", filepath.Join(dir, "cert.pem"), "--key", filepath.Join(dir, "key.pem"),
		"--resolve", "api.bank.test:" + port + ":127.0.0.1", "-w", "\n%{http_code}"}, args...)
	all = append(all, "https://api.bank.test:"+port+path)
	out, err := exec.Command(bin, all...).CombinedOutput()
	if err != nil {
		t.Fatalf("curl %s: %v\n%s", strings.Join(all, " "), err, out)
	}
	return string(out)
}

func pemCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// TestRequestBodyLimit: a body over maxRequestBodySize is answered 413:
// before the origin is contacted when its Content-Length says so or when
// buffering reads it first, as soon as the limit is crossed otherwise; a
// body at the limit is served.
func TestRequestBodyLimit(t *testing.T) {
	var reached atomic.Int64
	origin := newCountingOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		b, err := io.ReadAll(r.Body)
		fmt.Fprintf(w, "got %d bytes, err %v", len(b), err)
	})
	log := &accessLog{}
	e := edgeLogged(t, origin.URL, log, func(a *manifest.ApplicationSpec) { a.MaxRequestBodySize = "1KiB" })
	dir := t.TempDir()
	big := filepath.Join(dir, "big")
	os.WriteFile(big, bytes.Repeat([]byte("x"), 1025), 0o600)
	exact := filepath.Join(dir, "exact")
	os.WriteFile(exact, bytes.Repeat([]byte("x"), 1024), 0o600)

	t.Run("Content-Length over the limit", func(t *testing.T) {
		out := e.curl(t, "/upload", "--data-binary", "@"+big)
		if !strings.HasSuffix(out, "\n413") || !strings.Contains(out, "content too large") {
			t.Errorf("curl: %q, want 413", out)
		}
	})
	t.Run("chunked over the limit", func(t *testing.T) {
		out := e.curl(t, "/upload", "-H", "Transfer-Encoding: chunked", "--data-binary", "@"+big)
		if !strings.HasSuffix(out, "\n413") {
			t.Errorf("curl: %q, want 413", out)
		}
	})
	if n := reached.Load(); n != 0 {
		t.Errorf("the origin was reached %d times by bodies over the limit", n)
	}
	t.Run("at the limit", func(t *testing.T) {
		out := e.curl(t, "/upload", "-H", "Transfer-Encoding: chunked", "--data-binary", "@"+exact)
		if !strings.HasSuffix(out, "got 1024 bytes, err <nil>\n200") {
			t.Errorf("curl: %q, want the origin to get 1024 bytes", out)
		}
	})
	if got := e.countLimits(t, log)[edge.LimitBodySize]; got != 2 {
		t.Errorf("%d refusals counted as %s, want 2", got, edge.LimitBodySize)
	}
}

// TestRequestBodyLimitStreaming: without buffering, a chunked body is
// streamed to the origin and cut with 413 as soon as it crosses the limit;
// the origin never gets a complete request.
func TestRequestBodyLimitStreaming(t *testing.T) {
	bodyErr := make(chan error, 1)
	origin := newCountingOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		_, err := io.ReadAll(r.Body)
		bodyErr <- err
	})
	off := false
	e := edgeFor(t, origin.URL, func(a *manifest.ApplicationSpec) {
		a.MaxRequestBodySize = "100KiB"
		a.RequestBuffering = &manifest.RequestBuffering{Enabled: &off}
	})
	c := e.dial(t)
	head := "POST /upload HTTP/1.1\r\nHost: api.bank.test\r\nTransfer-Encoding: chunked\r\n\r\n"
	chunk := fmt.Sprintf("%x\r\n%s\r\n", 40<<10, bytes.Repeat([]byte("y"), 40<<10))
	io.WriteString(c, head+chunk+chunk)
	// The origin has started receiving the body (the edge streams it).
	time.Sleep(50 * time.Millisecond)
	io.WriteString(c, chunk+"0\r\n\r\n")
	resp, err := http.ReadResponse(c.br, &http.Request{Method: "POST"})
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 413 || !resp.Close {
		t.Errorf("status %d, close %v: want 413 and the connection closed", resp.StatusCode, resp.Close)
	}
	select {
	case err := <-bodyErr:
		if err == nil {
			t.Error("the origin read a complete body")
		}
	case <-time.After(5 * time.Second):
		t.Error("the origin's request never ended")
	}
}

// TestSlowUploaderHoldsNoOriginConnection: with one origin connection and
// no queue, a client that sends its body one byte at a time holds no
// origin connection while buffering is on, so other clients are served
// meanwhile; with buffering off the same uploader pins the only
// connection and the others are refused (the defence is what serves them).
func TestSlowUploaderHoldsNoOriginConnection(t *testing.T) {
	for _, buffering := range []bool{true, false} {
		t.Run(fmt.Sprintf("buffering=%v", buffering), func(t *testing.T) {
			origin := newCountingOrigin(t, func(w http.ResponseWriter, r *http.Request) {
				b, err := io.ReadAll(r.Body)
				fmt.Fprintf(w, "got %q, err %v", b, err)
			})
			e := edgeFor(t, origin.URL, func(a *manifest.ApplicationSpec) {
				a.Origin.MaxConnections, a.Origin.MaxQueue, a.Origin.ResponseTimeout = intp(1), intp(0), "30s"
				a.RequestBuffering = &manifest.RequestBuffering{Enabled: &buffering}
			})
			up := e.dial(t)
			const body = "slow"
			io.WriteString(up, fmt.Sprintf("POST /upload HTTP/1.1\r\nHost: api.bank.test\r\nContent-Length: %d\r\n\r\n", len(body)))
			client := e.h1Client()
			for i := range len(body) {
				time.Sleep(300 * time.Millisecond) // the uploader's pace
				io.WriteString(up, body[i:i+1])
				if i == len(body)-1 {
					break
				}
				resp, err := client.Get("https://api.bank.test/other")
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				want := 200
				if !buffering {
					want = 503
				}
				if resp.StatusCode != want {
					t.Errorf("another client during the upload: %d, want %d", resp.StatusCode, want)
				}
			}
			resp, err := http.ReadResponse(up.br, &http.Request{Method: "POST"})
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 200 || string(got) != `got "slow", err <nil>` {
				t.Errorf("uploader: %d %q", resp.StatusCode, got)
			}
		})
	}
}

// headerOrigin answers with the header names it received, lowercased and
// sorted, one "name: value" a line.
func headerOrigin(t *testing.T) *countingOrigin {
	return newCountingOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		var lines []string
		for k, vv := range r.Header {
			lines = append(lines, strings.ToLower(k)+": "+strings.Join(vv, ","))
		}
		sort.Strings(lines)
		io.WriteString(w, strings.Join(lines, "\n"))
	})
}

// TestUnderscoreHeaders: header names with '_' never reach the origin by
// default (nginx's underscores_in_headers off), so CGI-style origins
// cannot read X_Forwarded_For as X-Forwarded-For; with underscoresInHeaders
// they are forwarded, except the forwarding, framing and identity families.
func TestUnderscoreHeaders(t *testing.T) {
	origin := headerOrigin(t)
	spoof := "X_Forwarded_For: 6.6.6.6\r\nX_Forwarded_Proto: http\r\nContent_Length: 5\r\nTransfer_Encoding: chunked\r\n" +
		"Client_Cert_Subject: forged\r\nX_SSL_Client_Verify: SUCCESS\r\nSsl_Client_S_Dn: forged\r\nX_Tenant_Id: t-1\r\n"
	for _, allow := range []bool{false, true} {
		t.Run(fmt.Sprintf("underscoresInHeaders=%v", allow), func(t *testing.T) {
			e := edgeFor(t, origin.URL, func(a *manifest.ApplicationSpec) { a.UnderscoresInHeaders = allow })
			c := e.dial(t)
			status, body := c.get(t, "/h", spoof)
			if status != 200 {
				t.Fatalf("status %d: %s", status, body)
			}
			for _, forged := range []string{"x_forwarded", "content_length", "transfer_encoding", "client_cert", "ssl_client", "6.6.6.6", "forged"} {
				if strings.Contains(body, forged) {
					t.Errorf("the origin received %q:\n%s", forged, body)
				}
			}
			if got := strings.Contains(body, "x_tenant_id: t-1"); got != allow {
				t.Errorf("X_Tenant_Id forwarded: %v, want %v:\n%s", got, allow, body)
			}
			if !strings.Contains(body, "x-forwarded-for: 127.0.0.1") {
				t.Errorf("the edge's own X-Forwarded-For is missing:\n%s", body)
			}
		})
	}
}

// TestOptionsAsterisk: "OPTIONS *" reaches the origin as "OPTIONS *", not
// as a path, also when the origin URL has a base path.
func TestOptionsAsterisk(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	lines := make(chan string, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					lines <- req.Method + " " + req.RequestURI
					io.WriteString(c, "HTTP/1.1 200 OK\r\nAllow: GET, OPTIONS\r\nContent-Length: 0\r\n\r\n")
				}
			}()
		}
	}()
	for _, base := range []string{"", "/base"} {
		e := edgeFor(t, "http://"+ln.Addr().String()+base, nil)
		c := e.dial(t)
		resp := c.raw(t, "OPTIONS", "OPTIONS * HTTP/1.1\r\nHost: api.bank.test\r\n\r\n")
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Allow") != "GET, OPTIONS" {
			t.Errorf("base %q: status %d, Allow %q", base, resp.StatusCode, resp.Header.Get("Allow"))
		}
		if got := <-lines; got != "OPTIONS *" {
			t.Errorf("base %q: the origin received %q, want OPTIONS *", base, got)
		}
	}
}

// TestRequestBodyLimitDefaultAndUnlimited: without maxRequestBodySize a
// body over 10MiB is refused (413) before the origin is reached, and "0"
// accepts any size.
func TestRequestBodyLimitDefaultAndUnlimited(t *testing.T) {
	var reached atomic.Int64
	origin := newCountingOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		n, err := io.Copy(io.Discard, r.Body)
		fmt.Fprintf(w, "got %d bytes, err %v", n, err)
	})
	body := bytes.Repeat([]byte("z"), 10<<20+1)
	post := func(e *edgeServer) (int, string) {
		resp, err := e.h1Client().Post("https://api.bank.test/upload", "application/octet-stream", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		got, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(got)
	}
	// The head alone decides: the edge answers before reading the body.
	c := edgeFor(t, origin.URL, nil).dial(t)
	resp := c.raw(t, "POST", fmt.Sprintf("POST /upload HTTP/1.1\r\nHost: api.bank.test\r\nContent-Length: %d\r\n\r\n", len(body)))
	resp.Body.Close()
	if resp.StatusCode != 413 || reached.Load() != 0 {
		t.Errorf("10MiB+1 with the default limit: %d, origin reached %d times; want 413 and never", resp.StatusCode, reached.Load())
	}
	unlimited := edgeFor(t, origin.URL, func(a *manifest.ApplicationSpec) { a.MaxRequestBodySize = "0" })
	if status, got := post(unlimited); status != 200 || got != fmt.Sprintf("got %d bytes, err <nil>", len(body)) {
		t.Errorf("10MiB+1 with maxRequestBodySize 0: %d %q", status, got)
	}
}
