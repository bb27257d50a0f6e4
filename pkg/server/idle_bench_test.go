package server_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgectl/edgectl/pkg/edge"
	"github.com/edgectl/edgectl/pkg/manifest"
	"github.com/edgectl/edgectl/pkg/pki/pkitest"
	"github.com/edgectl/edgectl/pkg/server"
	"github.com/edgectl/edgectl/pkg/state"
	"golang.org/x/net/http2"
)

// idleConns is how many idle connections BenchmarkIdleConn holds open, as
// the side-by-side harness does.
const idleConns = 2000

// BenchmarkIdleConn measures what an idle TLS keep-alive connection costs
// the edge: idleConns mTLS connections (TLS 1.3, ECDSA P-256) each serve
// one request through the edge to an origin, then stay open and idle. The
// clients and the origin run in a child process (this test binary, in
// TestIdleClientProcess), so that only the edge's memory is measured:
// the process's resident set (/proc/self/statm) and the Go runtime's heap
// and stacks (runtime.MemStats), after two collections and the release of
// freed memory to the system, before the clients connect and once they
// are all idle, divided by idleConns. Run it with -benchtime=1x:
//
//	go test -run '^$' -bench IdleConn -benchtime=1x ./pkg/server/
//
// With EDGECTL_IDLE_HEAP_PROFILE set to a file name, it writes there a heap
// profile taken while the connections are idle.
//
// The sub-benchmark proto=h2 does the same over HTTP/2: one stream on each
// connection, which then stays open with no stream.
func BenchmarkIdleConn(b *testing.B) {
	if runtime.GOOS != "linux" {
		b.Skip("reads the resident set from /proc/self/statm (Linux)")
	}
	for _, proto := range []string{"http/1.1", "h2"} {
		name := "proto=" + strings.ReplaceAll(proto, "/", "")
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				idleConnOnce(b, proto)
			}
		})
	}
}

func idleConnOnce(b *testing.B, proto string) {
	dir := b.TempDir()
	root, partners := pkitest.NewCA("edge root"), pkitest.NewCA("partner ca")
	srvCert := root.IssueServer([]string{"api.test"})
	client := partners.IssueClient("partner-app")
	for name, data := range map[string][]byte{"root.pem": root.CertPEM(), "client.pem": client.ChainPEM(), "client.key": client.KeyPEM()} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			b.Fatal(err)
		}
	}

	// The child starts the origin and says where it is.
	cmd := exec.Command(os.Args[0], "-test.run=^TestIdleClientProcess$")
	cmd.Env = append(os.Environ(), "EDGECTL_IDLE_CLIENT="+dir, "EDGECTL_IDLE_CONNS="+strconv.Itoa(idleConns), "EDGECTL_IDLE_PROTO="+proto)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		stdin.Close()
		cmd.Wait()
	}()
	lines := bufio.NewScanner(stdout)
	expect := func(prefix string) string {
		for lines.Scan() {
			if rest, ok := strings.CutPrefix(lines.Text(), prefix); ok {
				return rest
			}
		}
		b.Fatalf("the client process ended before saying %q: %v", prefix, lines.Err())
		return ""
	}
	originURL := expect("origin ")

	snap := &state.Snapshot{FormatVersion: state.FormatVersion, Lineage: state.NewLineage(), Serial: 1,
		AppliedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Resources: []state.Resource{
			{Kind: manifest.KindCertificate, Name: "edge", Spec: &manifest.CertificateSpec{Certificate: string(srvCert.ChainPEM()), PrivateKeyEnv: "EDGE_KEY"}},
			{Kind: manifest.KindTrustedCA, Name: "partners", Spec: &manifest.TrustedCASpec{Certificate: string(partners.CertPEM())}},
			{Kind: manifest.KindApplication, Name: "app", Spec: &manifest.ApplicationSpec{
				Origin: manifest.Origin{URL: originURL, ConnectTimeout: "1s", ResponseTimeout: "5s"},
				Rules: []manifest.AppRule{{Name: "identity", Behaviors: []manifest.AppBehavior{
					{AddRequestHeader: "Client-Cert-Subject: ${ssl_client_s_dn_parsed}"},
				}}},
			}},
			{Kind: manifest.KindDomain, Name: "api", Spec: &manifest.DomainSpec{Hostnames: []string{"api.test"}, Certificate: "edge", Application: "app",
				MTLS: &manifest.MTLS{Enabled: true, Verification: "enforce", TrustedCA: "partners"}}},
		}}
	cfg := server.Config{
		Store:        server.FixedState("benchmark", snap),
		PollInterval: -1,
		Listen:       "127.0.0.1:0",
		Admin:        "127.0.0.1:0",
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
		AccessLog:    io.Discard,
		Compile: edge.Options{LookupEnv: func(k string) (string, bool) {
			return string(srvCert.KeyPEM()), k == "EDGE_KEY"
		}},
	}
	srv, err := server.New(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	defer func() {
		cancel()
		<-done
	}()

	before := idleMemory()
	fmt.Fprintf(stdin, "go %s\n", srv.Addr())
	if got := expect("ready "); got != strconv.Itoa(idleConns) {
		b.Fatalf("the client process holds %s idle connections, want %d", got, idleConns)
	}
	// Let the connections settle into their idle wait (h1's idleSettle).
	time.Sleep(time.Second)
	after := idleMemory()
	if path := os.Getenv("EDGECTL_IDLE_HEAP_PROFILE"); path != "" {
		// Where the idle connections' heap goes: go tool pprof -sample_index=inuse_space.
		f, err := os.Create(path)
		if err != nil {
			b.Fatal(err)
		}
		pprof.WriteHeapProfile(f)
		f.Close()
	}
	b.ReportMetric(float64(after.rss-before.rss)/idleConns, "rss-B/conn")
	b.ReportMetric(float64(after.heap-before.heap)/idleConns, "heap-B/conn")
	b.ReportMetric(float64(after.stack-before.stack)/idleConns, "stack-B/conn")
	b.ReportMetric(float64(after.goroutines-before.goroutines)/idleConns, "goroutines/conn")
}

type memFigures struct {
	rss, heap, stack uint64
	goroutines       int
}

// idleMemory collects garbage twice (runtime.GC, then debug.FreeOSMemory's,
// each of which may halve an idle goroutine's oversized stack), returns
// freed memory to the system and reports the process's figures.
func idleMemory() memFigures {
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	statm, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		panic(err)
	}
	fields := strings.Fields(string(statm))
	resident, _ := strconv.ParseUint(fields[1], 10, 64)
	return memFigures{rss: resident * uint64(os.Getpagesize()), heap: ms.HeapInuse, stack: ms.StackInuse, goroutines: runtime.NumGoroutine()}
}

// TestIdleClientProcess is BenchmarkIdleConn's child process: it serves
// as the origin, then opens the idle connections. It does nothing in a
// test run.
func TestIdleClientProcess(t *testing.T) {
	dir := os.Getenv("EDGECTL_IDLE_CLIENT")
	if dir == "" {
		t.Skip("the child process of BenchmarkIdleConn")
	}
	n, err := strconv.Atoi(os.Getenv("EDGECTL_IDLE_CONNS"))
	if err != nil {
		t.Fatal(err)
	}
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "ok\n")
	}))
	defer origin.Close()
	fmt.Printf("origin %s\n", origin.URL)

	read := func(name string) []byte {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(read("root.pem"))
	cert, err := tls.X509KeyPair(read("client.pem"), read("client.key"))
	if err != nil {
		t.Fatal(err)
	}
	proto := os.Getenv("EDGECTL_IDLE_PROTO")
	cfg := &tls.Config{ServerName: "api.test", RootCAs: roots, Certificates: []tls.Certificate{cert}, NextProtos: []string{proto}}

	in := bufio.NewScanner(os.Stdin)
	if !in.Scan() {
		t.Fatal("no address")
	}
	addr := strings.TrimPrefix(in.Text(), "go ")
	conns := make([]io.Closer, n)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	next := make(chan int)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				open := idleClientConn
				if proto == "h2" {
					open = idleClientConnH2
				}
				c, err := open(addr, cfg)
				mu.Lock()
				if err != nil && first == nil {
					first = err
				}
				conns[i] = c
				mu.Unlock()
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	if first != nil {
		t.Fatal(first)
	}
	fmt.Printf("ready %d\n", n)
	// Hold the connections until the benchmark closes stdin.
	io.Copy(io.Discard, os.Stdin)
	for _, c := range conns {
		c.Close()
	}
}

// idleClientConnH2 opens an HTTP/2 connection, sends one request on it
// and reads its response, and leaves the connection open without a
// stream. The client sends no PING while it is idle.
func idleClientConnH2(addr string, cfg *tls.Config) (io.Closer, error) {
	c, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		return nil, err
	}
	if p := c.ConnectionState().NegotiatedProtocol; p != "h2" {
		c.Close()
		return nil, fmt.Errorf("negotiated %q, want h2", p)
	}
	cc, err := (&http2.Transport{}).NewClientConn(c)
	if err != nil {
		c.Close()
		return nil, err
	}
	req, _ := http.NewRequest("GET", "https://api.test/v1/accounts", nil)
	req.Header.Set("User-Agent", "idle")
	resp, err := cc.RoundTrip(req)
	if err == nil {
		err = checkIdleResponse(resp)
	}
	if err != nil {
		cc.Close()
		return nil, err
	}
	return cc, nil
}

// checkIdleResponse reads the response to an idle connection's request:
// the origin's "ok".
func checkIdleResponse(resp *http.Response) error {
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || !bytes.Equal(body, []byte("ok\n")) {
		return fmt.Errorf("the request on an idle connection: status %d, body %q, error %v", resp.StatusCode, body, err)
	}
	return nil
}

// idleClientConn opens a TLS connection, sends one request on it and
// reads its response, and leaves it open.
func idleClientConn(addr string, cfg *tls.Config) (io.Closer, error) {
	c, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		return nil, err
	}
	if _, err := io.WriteString(c, "GET /v1/accounts HTTP/1.1\r\nHost: api.test\r\nUser-Agent: idle\r\nAccept: */*\r\n\r\n"); err != nil {
		c.Close()
		return nil, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err == nil {
		err = checkIdleResponse(resp)
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}
