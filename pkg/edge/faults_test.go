package edge_test

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/edgectl/edgectl/pkg/manifest"
)

// edgeWithOrigin starts an edge whose application points at originURL;
// edit, when not nil, changes the application first.
func edgeWithOrigin(t *testing.T, originURL string, edit func(*manifest.ApplicationSpec)) *edgeServer {
	t.Helper()
	p := newPKI(t)
	snap := snapshotFor(p, originURL)
	if edit != nil {
		edit(snap.Resources[2].Spec.(*manifest.ApplicationSpec))
	}
	e := serveSnapshot(t, p, snap)
	e.o = &origin{}
	return e
}

// faultResponseTimeout is the origin response timeout of TestOriginFaults:
// short, so that the timeouts it checks do not wait out the default.
const faultResponseTimeout = "300ms"

func TestOriginFaults(t *testing.T) {
	t.Parallel()
	refused := func() string { // a port nothing listens on
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		addr := ln.Addr().String()
		ln.Close()
		return "http://" + addr
	}()
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(5 * time.Second):
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(slow.Close)
	hangup := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _, _ := http.NewResponseController(w).Hijack()
		c.Close()
	}))
	t.Cleanup(hangup.Close)
	// A listener that accepts and never answers: the connect succeeds, the response never comes.
	silent, _ := net.Listen("tcp", "127.0.0.1:0")
	t.Cleanup(func() { silent.Close() })
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	tests := map[string]struct {
		url    string
		status int
		body   string
		within time.Duration
	}{
		"origin refuses":           {refused, 502, "refused", time.Second},
		"origin slow":              {slow.URL, 504, "did not answer in time", 4 * time.Second},
		"origin silent":            {"http://" + silent.Addr().String(), 504, "did not answer in time", 4 * time.Second},
		"origin hangs up":          {hangup.URL, 502, "bad gateway", time.Second},
		"origin unresolvable host": {"http://origin.invalid:80", 502, "bad gateway", 3 * time.Second},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := edgeWithOrigin(t, tc.url, func(a *manifest.ApplicationSpec) {
				a.Origin.ResponseTimeout = faultResponseTimeout
			})
			start := time.Now()
			got := e.do(t, "api.bank.test", "valid", tls.VersionTLS13, "", nil)
			if got.status != tc.status || !strings.Contains(got.body, tc.body) {
				t.Fatalf("want %d %q, got %+v", tc.status, tc.body, got)
			}
			if d := time.Since(start); d > tc.within {
				t.Errorf("took %v, want under %v", d, tc.within)
			}
			// The edge stays healthy: the next request is answered too.
			if again := e.do(t, "api.bank.test", "valid", tls.VersionTLS13, "", nil); again.status != tc.status {
				t.Errorf("second request: %+v", again)
			}
		})
	}
}

// TestStreamingBody: responses are streamed, not buffered.
func TestStreamingBody(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	o := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "first\n")
		w.(http.Flusher).Flush()
		<-release
		fmt.Fprint(w, "second\n")
	}))
	defer o.Close()
	defer close(release)
	e := edgeWithOrigin(t, o.URL, nil)
	roots := e.p.edgeRoot.Pool()
	cert := e.p.clients["valid"].TLSCertificate()
	conn, err := tls.Dial("tcp", e.addr, &tls.Config{ServerName: "api.bank.test", RootCAs: roots, Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	req, _ := http.NewRequest("GET", "https://api.bank.test/stream", nil)
	req.Write(conn)
	conn.SetDeadline(time.Now().Add(3 * time.Second))
	resp, err := http.ReadResponse(bufioReader(conn), req)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 6)
	if _, err := resp.Body.Read(buf); err != nil || string(buf) != "first\n" {
		t.Fatalf("the first chunk did not stream: %q %v", buf, err)
	}
}

// TestDropClosesWithoutResponse: a firewall drop closes the connection
// without a response and is recorded as status 0, not 200.
func TestDropClosesWithoutResponse(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	o := newOrigin(t)
	snap := snapshotFor(p, o.URL)
	snap.Resources[3].Spec.(*manifest.FirewallSpec).Rules[0].Behaviors = []manifest.FirewallBehavior{{Drop: true}}
	log := &accessLog{}
	e := serveSnapshot(t, p, snap, withAccessLog(log))
	e.o = o
	got := e.do(t, "portal.bank.test", "", tls.VersionTLS13, "", nil)
	if !got.rejected {
		t.Fatalf("a dropped request got a response: %+v", got)
	}
	if _, hits := o.snapshot(); hits != 0 {
		t.Fatal("a dropped request reached the origin")
	}
	if recs := e.records(t, log); len(recs) != 1 || recs[0].Status != 0 || recs[0].FirewallAction != "drop" {
		t.Fatalf("records: %+v", recs)
	}
}
