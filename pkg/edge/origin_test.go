package edge_test

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/net/http2"

	"github.com/edgectl/edgectl/pkg/edge"
	"github.com/edgectl/edgectl/pkg/manifest"
)

// countingOrigin is an origin that counts the connections it accepts.
type countingOrigin struct {
	*httptest.Server
	accepts atomic.Int64
}

func newCountingOrigin(t *testing.T, h http.HandlerFunc) *countingOrigin {
	t.Helper()
	o := &countingOrigin{Server: httptest.NewUnstartedServer(h)}
	o.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			o.accepts.Add(1)
		}
	}
	o.Start()
	t.Cleanup(o.Close)
	return o
}

// edgeFor starts an edge whose application "api" points at originURL;
// edit, when not nil, changes the application first.
func edgeFor(t *testing.T, originURL string, edit func(*manifest.ApplicationSpec)) *edgeServer {
	t.Helper()
	p := newPKI(t)
	snap := snapshotFor(p, originURL)
	if edit != nil {
		edit(snap.Resources[2].Spec.(*manifest.ApplicationSpec))
	}
	return serveSnapshot(t, p, snap)
}

// clientConn is one HTTP/1.1 connection of the "valid" partner to
// api.bank.test.
type clientConn struct {
	*tls.Conn
	br *bufio.Reader
}

func (e *edgeServer) dial(t *testing.T) *clientConn {
	t.Helper()
	cert := e.p.clients["valid"].TLSCertificate()
	conn, err := tls.Dial("tcp", e.addr, &tls.Config{ServerName: "api.bank.test", RootCAs: e.p.edgeRoot.Pool(),
		Certificates: []tls.Certificate{cert}, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	return &clientConn{Conn: conn, br: bufio.NewReader(conn)}
}

// raw sends a request written by hand and reads the response head; method
// tells the reader whether a body follows.
func (c *clientConn) raw(t *testing.T, method, request string) *http.Response {
	t.Helper()
	if _, err := io.WriteString(c, request); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(c.br, &http.Request{Method: method})
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// get sends GET path and returns the status and body.
func (c *clientConn) get(t *testing.T, path string, hdr ...string) (int, string) {
	t.Helper()
	req := "GET " + path + " HTTP/1.1\r\nHost: api.bank.test\r\n" + strings.Join(hdr, "") + "\r\n"
	resp := c.raw(t, "GET", req)
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

// TestConnectionHeaderCannotDropEdgeHeaders: hop-by-hop stripping applies
// to the client's headers before the edge adds its own, so a client that
// names an identity header in Connection does not make the edge drop it,
// and a forged value never reaches the origin.
func TestConnectionHeaderCannotDropEdgeHeaders(t *testing.T) {
	t.Parallel()
	o := newOrigin(t)
	e := edgeFor(t, o.URL, func(app *manifest.ApplicationSpec) {
		app.Rules[0].Behaviors = append(app.Rules[0].Behaviors, manifest.AppBehavior{AddRequestHeader: "Ssl-Client-S-Dn: ${ssl_client_s_dn}"})
	})
	c := e.dial(t)
	status, _ := c.get(t, "/accounts",
		"Connection: close, Ssl-Client-S-Dn, X-Hop\r\n",
		"Ssl-Client-S-Dn: CN=admin\r\n",
		"X-Hop: 1\r\n",
		"Keep-Alive: timeout=5\r\n",
		"Proxy-Authorization: Basic Zm9vOmJhcg==\r\n",
		"X-Kept: yes\r\n")
	if status != 200 {
		t.Fatalf("status %d", status)
	}
	h, _ := o.snapshot()
	if v := h.Values("Ssl-Client-S-Dn"); len(v) != 1 || !strings.Contains(v[0], "partner-app") {
		t.Errorf("Ssl-Client-S-Dn = %q, want exactly the edge's value", v)
	}
	for _, name := range []string{"Connection", "X-Hop", "Keep-Alive", "Proxy-Authorization"} {
		if v, ok := h[name]; ok {
			t.Errorf("hop-by-hop header %s reached the origin: %q", name, v)
		}
	}
	if h.Get("X-Kept") != "yes" {
		t.Error("an end-to-end header was dropped")
	}
}

// TestForwardedHeadersReplaced: the client's X-Forwarded-* and Forwarded
// headers are replaced by the edge's, and a request without User-Agent
// reaches the origin without one.
func TestForwardedHeadersReplaced(t *testing.T) {
	t.Parallel()
	o := newOrigin(t)
	e := edgeFor(t, o.URL, nil)
	c := e.dial(t)
	status, _ := c.get(t, "/accounts",
		"X-Forwarded-For: 203.0.113.9\r\n",
		"X-Forwarded-Host: evil.example\r\n",
		"X-Forwarded-Proto: http\r\n",
		"Forwarded: for=203.0.113.9\r\n")
	if status != 200 {
		t.Fatalf("status %d", status)
	}
	h, _ := o.snapshot()
	got := map[string][]string{}
	for _, k := range []string{"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "Forwarded", "User-Agent"} {
		got[k] = h.Values(k)
	}
	want := map[string][]string{
		"X-Forwarded-For":   {"127.0.0.1"},
		"X-Forwarded-Host":  {"api.bank.test"},
		"X-Forwarded-Proto": {"https"},
		"Forwarded":         nil,
		"User-Agent":        nil,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("origin headers (-want +got):\n%s", diff)
	}
	c.get(t, "/accounts", "User-Agent: partner/1.0\r\n")
	if h, _ := o.snapshot(); h.Get("User-Agent") != "partner/1.0" {
		t.Errorf("User-Agent = %q", h.Get("User-Agent"))
	}
}

// TestOriginRequestTarget: with paths.origin: original, the origin
// receives the request target that httputil.ReverseProxy with SetURL
// sends (base path joined, base query first, unparsable query parameters
// dropped), or the rewritten one; by default it receives the same with the
// path normalised.
func TestOriginRequestTarget(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var seen string
	o := newCountingOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = r.RequestURI
		mu.Unlock()
	})
	last := func() string {
		mu.Lock()
		defer mu.Unlock()
		return seen
	}
	base, _ := url.Parse(o.URL + "/base?k=v")
	oracle := httptest.NewServer(&httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(base) }})
	defer oracle.Close()
	e := edgeFor(t, base.String(), func(app *manifest.ApplicationSpec) {
		app.Paths = &manifest.PathPolicy{Origin: manifest.OriginPathOriginal}
	})
	c := e.dial(t)
	for _, target := range []string{
		"/accounts?x=1", "/", "/a%2Fb?x=%41", "/sp%20ace", "/a/./b//c", "/x?a;b=1&c=2", "/x?bad=%zz", "/path?", "/%7Euser",
	} {
		rawGet(t, oracle.Listener.Addr().String(), target)
		want := last()
		if status, _ := c.get(t, target); status != 200 {
			t.Fatalf("%s: status %d", target, status)
		}
		if got := last(); got != want {
			t.Errorf("%s: the origin got %q, ReverseProxy sends %q", target, got, want)
		}
	}

	normalized := edgeFor(t, base.String(), nil).dial(t)
	for target, want := range map[string]string{
		"/accounts?x=1":    "/base/accounts?k=v&x=1",
		"/a%2Fb?x=%41":     "/base/a/b?k=v&x=%41",
		"/a/./b//c":        "/base/a/b/c?k=v",
		"/%7Euser":         "/base/~user?k=v",
		"/sp%20ace":        "/base/sp%20ace?k=v",
		"/x/../%2e%2E/y/.": "/base/y/?k=v",
	} {
		if status, _ := normalized.get(t, target); status != 200 {
			t.Fatalf("%s: status %d", target, status)
		}
		if got := last(); got != want {
			t.Errorf("normalised %s: the origin got %q, want %q", target, got, want)
		}
	}

	rewritten := edgeFor(t, base.String(), func(app *manifest.ApplicationSpec) {
		app.Rules = append(app.Rules, manifest.AppRule{Name: "v2", Behaviors: []manifest.AppBehavior{{RewriteRequest: "/v2/fixed?q=1"}}})
	})
	if status, _ := rewritten.dial(t).get(t, "/accounts?x=1"); status != 200 {
		t.Fatalf("rewrite: status %d", status)
	}
	if got := last(); got != "/base/v2/fixed?q=1" {
		t.Errorf("rewrite: the origin got %q", got)
	}
}

// rawGet sends GET target to addr over plain HTTP, the target written as
// is, and waits for the answer.
func rawGet(t *testing.T, addr, target string) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: origin\r\n\r\n", target)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("oracle %s: status %d", target, resp.StatusCode)
	}
}

// echoOrigin answers with what it received of the body: its length, hash,
// framing and trailer.
func echoOrigin(t *testing.T) *countingOrigin {
	return newCountingOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		fmt.Fprintf(w, "%d %x cl=%d te=%v trailer=%q", len(body), sha256.Sum256(body), r.ContentLength, r.TransferEncoding, r.Trailer.Get("X-Checksum"))
	})
}

// TestRequestBodyReachesOrigin: bodies of known length and chunked bodies
// (HTTP/1.1 and HTTP/2), small and larger than every buffer, reach the
// origin intact.
func TestRequestBodyReachesOrigin(t *testing.T) {
	t.Parallel()
	o := echoOrigin(t)
	e := edgeFor(t, o.URL, nil)
	big := bytes.Repeat([]byte("0123456789abcdef"), 80<<10) // 1.25 MiB
	for name, tc := range map[string]struct {
		body    []byte
		chunked bool
		want    string
	}{
		"content-length small": {[]byte("hello"), false, "cl=5 te=[]"},
		"content-length large": {big, false, fmt.Sprintf("cl=%d te=[]", len(big))},
		"chunked small":        {[]byte("hello"), true, `cl=-1 te=[chunked] trailer="sum"`},
		"chunked large":        {big, true, `cl=-1 te=[chunked] trailer="sum"`},
		"chunked empty":        {nil, true, `cl=-1 te=[chunked] trailer="sum"`},
	} {
		t.Run(name, func(t *testing.T) {
			c := e.dial(t)
			resp := c.raw(t, "POST", postRequest(tc.body, tc.chunked))
			got, _ := io.ReadAll(resp.Body)
			want := fmt.Sprintf("%d %x %s", len(tc.body), sha256.Sum256(tc.body), tc.want)
			if resp.StatusCode != 200 || !strings.HasPrefix(string(got), want) {
				t.Fatalf("status %d, origin saw %q, want %q", resp.StatusCode, got, want)
			}
		})
	}
	t.Run("expect 100-continue", func(t *testing.T) {
		c := e.dial(t)
		interim := c.raw(t, "POST", "POST /upload HTTP/1.1\r\nHost: api.bank.test\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
		if interim.StatusCode != http.StatusContinue {
			t.Fatalf("want 100 Continue before the body is sent, got %d", interim.StatusCode)
		}
		resp := c.raw(t, "POST", "hello")
		got, _ := io.ReadAll(resp.Body)
		if want := fmt.Sprintf("5 %x cl=5", sha256.Sum256([]byte("hello"))); resp.StatusCode != 200 || !strings.HasPrefix(string(got), want) {
			t.Fatalf("status %d, origin saw %q, want %q", resp.StatusCode, got, want)
		}
	})
	t.Run("HTTP/2 without length", func(t *testing.T) {
		cert := e.p.clients["valid"].TLSCertificate()
		conn, err := tls.Dial("tcp", e.addr, &tls.Config{ServerName: "api.bank.test", RootCAs: e.p.edgeRoot.Pool(), Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2"}})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		cc, err := (&http2.Transport{}).NewClientConn(conn)
		if err != nil {
			t.Fatal(err)
		}
		pr, pw := io.Pipe()
		go func() {
			pw.Write(big[:100<<10])
			pw.Write(big[100<<10:])
			pw.Close()
		}()
		req, _ := http.NewRequest("POST", "https://api.bank.test/upload", pr)
		resp, err := cc.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		want := fmt.Sprintf("%d %x cl=-1 te=[chunked]", len(big), sha256.Sum256(big))
		if resp.StatusCode != 200 || !strings.HasPrefix(string(got), want) {
			t.Fatalf("status %d, origin saw %q, want %q", resp.StatusCode, got, want)
		}
	})
}

// postRequest writes a POST of body, with Content-Length or chunked (in
// chunks of 7000 bytes, with a trailer).
func postRequest(body []byte, chunked bool) string {
	var b strings.Builder
	b.WriteString("POST /upload HTTP/1.1\r\nHost: api.bank.test\r\n")
	if !chunked {
		fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n%s", len(body), body)
		return b.String()
	}
	b.WriteString("Transfer-Encoding: chunked\r\nTrailer: X-Checksum\r\n\r\n")
	for len(body) > 0 {
		n := min(len(body), 7000)
		fmt.Fprintf(&b, "%x\r\n%s\r\n", n, body[:n])
		body = body[n:]
	}
	b.WriteString("0\r\nX-Checksum: sum\r\n\r\n")
	return b.String()
}

// TestChunkedResponseStreams: a chunked origin response reaches the client
// chunk by chunk, with its trailer.
func TestChunkedResponseStreams(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	o := newCountingOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Digest")
		io.WriteString(w, "first\n")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		io.WriteString(w, "second\n")
		w.Header().Set("X-Digest", "abc")
	})
	e := edgeFor(t, o.URL, nil)
	c := e.dial(t)
	resp := c.raw(t, "GET", "GET /stream HTTP/1.1\r\nHost: api.bank.test\r\n\r\n")
	if resp.ContentLength != -1 || len(resp.TransferEncoding) == 0 {
		t.Errorf("not streamed: length %d, encoding %v", resp.ContentLength, resp.TransferEncoding)
	}
	first := make([]byte, len("first\n"))
	if _, err := io.ReadFull(resp.Body, first); err != nil || string(first) != "first\n" {
		t.Fatalf("the first chunk did not arrive before the origin finished: %q %v", first, err)
	}
	close(release)
	rest, err := io.ReadAll(resp.Body)
	if err != nil || string(rest) != "second\n" {
		t.Fatalf("rest %q, %v", rest, err)
	}
	if got := resp.Trailer.Get("X-Digest"); got != "abc" {
		t.Errorf("trailer X-Digest = %q, want abc", got)
	}
}

// TestBodylessResponses: HEAD, 204 and 304 answers carry no body and leave
// both connections in step: the next request on them is answered right.
func TestBodylessResponses(t *testing.T) {
	t.Parallel()
	o := newCountingOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/head":
			w.Header().Set("Content-Length", "42")
		case "/nocontent":
			w.WriteHeader(http.StatusNoContent)
		case "/notmodified":
			w.Header().Set("ETag", `"v1"`)
			w.WriteHeader(http.StatusNotModified)
		default:
			io.WriteString(w, "data")
		}
	})
	e := edgeFor(t, o.URL, nil)
	c := e.dial(t)
	for _, tc := range []struct {
		method, path string
		status       int
		length       int64
	}{
		{"HEAD", "/head", 200, 42},
		{"GET", "/nocontent", 204, 0},
		{"GET", "/notmodified", 304, 0},
		{"GET", "/data", 200, 4},
		{"HEAD", "/head", 200, 42},
		{"GET", "/data", 200, 4},
	} {
		resp := c.raw(t, tc.method, tc.method+" "+tc.path+" HTTP/1.1\r\nHost: api.bank.test\r\n\r\n")
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		wantBody := ""
		if tc.path == "/data" {
			wantBody = "data"
		}
		if resp.StatusCode != tc.status || string(body) != wantBody || (tc.length > 0 && resp.ContentLength != tc.length) {
			t.Errorf("%s %s: status %d, length %d, body %q", tc.method, tc.path, resp.StatusCode, resp.ContentLength, body)
		}
	}
	if n := o.accepts.Load(); n != 1 {
		t.Errorf("the origin accepted %d connections, want 1", n)
	}
}

// TestOriginConnectionReuse: sequential requests share one origin
// connection, and concurrent ones never more than one each.
func TestOriginConnectionReuse(t *testing.T) {
	t.Parallel()
	o := newCountingOrigin(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	e := edgeFor(t, o.URL, nil)
	for i := range 20 {
		// A new client connection each time: the origin connection is
		// the edge's, not the client's.
		if status, body := e.dial(t).get(t, fmt.Sprintf("/n/%d", i)); status != 200 || body != "ok" {
			t.Fatalf("request %d: %d %q", i, status, body)
		}
	}
	if n := o.accepts.Load(); n != 1 {
		t.Fatalf("20 sequential requests opened %d origin connections, want 1", n)
	}
	const clients = 6
	var wg sync.WaitGroup
	for range clients {
		c := e.dial(t)
		wg.Go(func() {
			for range 10 {
				if status, _ := c.get(t, "/concurrent"); status != 200 {
					t.Errorf("status %d", status)
					return
				}
			}
		})
	}
	wg.Wait()
	if n := o.accepts.Load(); n > 1+clients {
		t.Errorf("%d concurrent clients opened %d origin connections", clients, n)
	}
}

// TestStalePooledConnection: when the origin closes an idle keep-alive
// connection, the next request still succeeds: a GET is retried on a new
// connection, a POST is never written into the dead one.
func TestStalePooledConnection(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ method, body string }{
		{"GET", ""},
		{"HEAD", ""},
		{"POST", "payload"},
		{"DELETE", ""},
	} {
		t.Run(tc.method, func(t *testing.T) {
			t.Parallel()
			o := newCountingOrigin(t, func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				w.Header().Set("Content-Length", fmt.Sprint(len(b)+3))
				io.WriteString(w, "ok ")
				w.Write(b)
			})
			e := edgeFor(t, o.URL, nil)
			c := e.dial(t)
			if status, _ := c.get(t, "/warm"); status != 200 {
				t.Fatalf("status %d", status)
			}
			if n := edge.IdleOriginConns(e.runtime(), "api"); n != 1 {
				t.Fatalf("%d idle origin connections, want 1", n)
			}
			o.CloseClientConnections()
			time.Sleep(50 * time.Millisecond) // let the FIN arrive
			req := fmt.Sprintf("%s /again HTTP/1.1\r\nHost: api.bank.test\r\nContent-Length: %d\r\n\r\n%s", tc.method, len(tc.body), tc.body)
			resp := c.raw(t, tc.method, req)
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 200 || (tc.method != "HEAD" && string(body) != "ok "+tc.body) {
				t.Fatalf("after the origin closed the idle connection: %d %q", resp.StatusCode, body)
			}
			if n := o.accepts.Load(); n != 2 {
				t.Errorf("the origin accepted %d connections, want 2", n)
			}
		})
	}
}

// TestUpgradeNotImplemented: protocol upgrades and CONNECT are answered
// 501 and never reach the origin.
func TestUpgradeNotImplemented(t *testing.T) {
	t.Parallel()
	o := newOrigin(t)
	e := edgeFor(t, o.URL, nil)
	for name, req := range map[string]string{
		"websocket": "GET /ws HTTP/1.1\r\nHost: api.bank.test\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
		"connect":   "CONNECT api.bank.test:443 HTTP/1.1\r\nHost: api.bank.test:443\r\n\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			resp := e.dial(t).raw(t, "GET", req)
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusNotImplemented || !strings.Contains(string(body), "not implemented") {
				t.Fatalf("%d %q", resp.StatusCode, body)
			}
		})
	}
	if _, hits := o.snapshot(); hits != 0 {
		t.Errorf("an upgrade request reached the origin %d times", hits)
	}
	// "Upgrade" without "Connection: upgrade" is an ordinary request; the
	// hop-by-hop header is not forwarded.
	if status, _ := e.dial(t).get(t, "/", "Upgrade: h2c\r\n"); status != 200 {
		t.Errorf("status %d", status)
	}
	if h, _ := o.snapshot(); h.Get("Upgrade") != "" {
		t.Error("Upgrade reached the origin")
	}
}

// TestOriginStallsMidBody: an origin that stops sending in the middle of a
// body is given up on after the response timeout; the client's response is
// aborted, not completed with a truncated body.
func TestOriginStallsMidBody(t *testing.T) {
	t.Parallel()
	o := newCountingOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		io.WriteString(w, "partial")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	e := edgeFor(t, o.URL, func(a *manifest.ApplicationSpec) {
		a.Origin.ResponseTimeout = "300ms" // short: the stall is not waited out
	})
	c := e.dial(t)
	start := time.Now()
	io.WriteString(c, "GET /stall HTTP/1.1\r\nHost: api.bank.test\r\n\r\n")
	// The edge may not have sent the head yet (it buffers a response of
	// known length): either the head or the body fails.
	resp, err := http.ReadResponse(c.br, nil)
	if err == nil {
		var body []byte
		if body, err = io.ReadAll(resp.Body); err == nil {
			t.Fatalf("the truncated body %q was delivered as complete", body)
		}
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v", d)
	}
}

// TestMalformedRequestBody: a client whose body cannot be read gets 400,
// not a 502 that would blame the origin, and the record says why.
func TestMalformedRequestBody(t *testing.T) {
	t.Parallel()
	o := echoOrigin(t)
	p := newPKI(t)
	log := &accessLog{}
	e := serveSnapshot(t, p, snapshotFor(p, o.URL), withAccessLog(log))
	c := e.dial(t)
	resp := c.raw(t, "POST", "POST /upload HTTP/1.1\r\nHost: api.bank.test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nnot a chunk size\r\n\r\n")
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("status %d, want 400", resp.StatusCode)
	}
	io.ReadAll(resp.Body)
	c.Close()
	recs := e.records(t, log)
	if len(recs) == 0 {
		t.Fatal("no record")
	}
	if last := recs[len(recs)-1]; last.Status != 400 || !strings.Contains(last.Error, "request body") {
		t.Errorf("record: status %d, error %q", last.Status, last.Error)
	}
}

// TestUnsolicitedOriginBytes: an origin that writes a second, unasked-for
// response on a kept-alive connection must not have it delivered as the
// answer to the next request, which may be another client's.
func TestUnsolicitedOriginBytes(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	unsolicited := make(chan struct{}) // closed once the unasked-for response is written
	go func() {
		for conns := 0; ; conns++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func(c net.Conn, firstConn bool) {
				defer c.Close()
				br := bufio.NewReader(c)
				for first := firstConn; ; first = false {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					io.Copy(io.Discard, req.Body)
					io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
					if first {
						time.Sleep(20 * time.Millisecond)
						io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nEVIL!")
						close(unsolicited)
					}
				}
			}(c, conns == 0)
		}
	}()
	e := edgeFor(t, "http://"+ln.Addr().String(), nil)
	if status, body := e.dial(t).get(t, "/first"); status != 200 || body != "ok" {
		t.Fatalf("first request: %d %q", status, body)
	}
	<-unsolicited // written on loopback: it is in the edge's receive buffer
	for _, method := range []string{"GET", "POST"} {
		req := method + " /second HTTP/1.1\r\nHost: api.bank.test\r\nContent-Length: 0\r\n\r\n"
		resp := e.dial(t).raw(t, method, req)
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || string(body) != "ok" {
			t.Fatalf("%s from another client got %d %q, want the origin's answer to it", method, resp.StatusCode, body)
		}
	}
}

// TestTrailersCannotForgeHeaders: a chunked request's trailers obey the
// rules of its headers: one named like a header the edge sets, a
// hop-by-hop or framing one, or one named in Connection never reaches the
// origin; an ordinary one does.
func TestTrailersCannotForgeHeaders(t *testing.T) {
	t.Parallel()
	got := make(chan http.Header, 1)
	o := newCountingOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		got <- r.Trailer.Clone()
	})
	e := edgeFor(t, o.URL, func(app *manifest.ApplicationSpec) {
		app.Rules[0].Behaviors = append(app.Rules[0].Behaviors, manifest.AppBehavior{AddRequestHeader: "Ssl-Client-S-Dn: ${ssl_client_s_dn}"})
	})
	// Declared in a Trailer field or not (undeclared trailers reach the
	// request's Trailer too, as with net/http's server).
	for _, declare := range []string{"Trailer: X-Checksum, Ssl-Client-S-Dn, Ssl_Client_S_Dn, X-Forwarded-For, X-Hop, Proxy-Authorization\r\n", ""} {
		req := "POST /upload HTTP/1.1\r\nHost: api.bank.test\r\nConnection: X-Hop\r\nTransfer-Encoding: chunked\r\n" +
			declare + "\r\n" +
			"3\r\nabc\r\n0\r\nX-Checksum: sum\r\nSsl-Client-S-Dn: CN=admin\r\nSsl_Client_S_Dn: CN=admin\r\nX-Forwarded-For: 203.0.113.9\r\nX-Hop: 1\r\nProxy-Authorization: Basic Zm9v\r\n\r\n"
		resp := e.dial(t).raw(t, "POST", req)
		io.Copy(io.Discard, resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("declared %v: status %d", declare != "", resp.StatusCode)
		}
		want := http.Header{"X-Checksum": {"sum"}}
		if diff := cmp.Diff(want, <-got); diff != "" {
			t.Fatalf("declared %v: trailers at the origin (-want +got):\n%s", declare != "", diff)
		}
	}
}

// TestRewrittenQueryCannotSplitTheRequestLine: a rewrite that renders a
// space or '#' into the query (here through ${uri}, which is decoded)
// reaches the origin escaped, in one well-formed request line.
func TestRewrittenQueryCannotSplitTheRequestLine(t *testing.T) {
	t.Parallel()
	got := make(chan string, 1)
	o := newCountingOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		got <- r.Method + " " + r.RequestURI + " " + r.Proto + " " + r.URL.Query().Get("x")
	})
	e := edgeFor(t, o.URL, func(app *manifest.ApplicationSpec) {
		app.Rules = append(app.Rules, manifest.AppRule{Name: "v2", Behaviors: []manifest.AppBehavior{{RewriteRequest: "/v2${uri}"}}})
	})
	status, _ := e.dial(t).get(t, "/a%3Fx=1%20HTTP/1.1%0D%0AX-Injected:%201%23frag")
	if status != 200 {
		t.Fatalf("status %d", status)
	}
	want := "GET /v2/a?x=1%20HTTP/1.1%0D%0AX-Injected:%201%23frag HTTP/1.1 1 HTTP/1.1\r\nX-Injected: 1#frag"
	if line := <-got; line != want {
		t.Fatalf("the origin got\n%q\nwant\n%q", line, want)
	}
}
