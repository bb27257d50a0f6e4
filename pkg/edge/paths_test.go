package edge_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgectl/edgectl/internal/nginxtest"
	"github.com/edgectl/edgectl/pkg/manifest"
	"github.com/edgectl/edgectl/pkg/state"
)

// adminFirewallEdge starts an edge whose domain api.bank.test has a
// firewall denying paths that start with /admin (request_uri
// starts_with /admin), in front of an origin that records the target it
// receives; policy, when not nil, is the application's path policy.
func adminFirewallEdge(t *testing.T, policy *manifest.PathPolicy) (*edgeServer, func() string) {
	t.Helper()
	var mu sync.Mutex
	var seen string
	origin := newCountingOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = r.RequestURI
		mu.Unlock()
		io.WriteString(w, "origin served "+r.RequestURI)
	})
	p := newPKI(t)
	snap := snapshotFor(p, origin.URL)
	snap.Resources[2].Spec.(*manifest.ApplicationSpec).Paths = policy
	addAdminRule(snap)
	return serveSnapshot(t, p, snap), func() string {
		mu.Lock()
		defer mu.Unlock()
		s := seen
		seen = ""
		return s
	}
}

// addAdminRule puts the firewall "portal" in front of api.bank.test with
// a rule denying /admin first.
func addAdminRule(snap *state.Snapshot) {
	arg := "/admin"
	fw := snap.Resources[3].Spec.(*manifest.FirewallSpec)
	fw.Rules = append([]manifest.FirewallRule{{
		Name:      "no admin",
		Criteria:  [][]manifest.Criterion{{{Variable: "request_uri", Operator: "starts_with", Argument: &arg}}},
		Behaviors: []manifest.FirewallBehavior{{Deny: true}},
	}}, fw.Rules...)
	snap.Resources[4].Spec.(*manifest.DomainSpec).Firewall = "portal"
}

// rawTarget sends "GET target HTTP/1.1" on c exactly as written and
// returns the status.
func (c *clientConn) rawTarget(t *testing.T, target string) int {
	t.Helper()
	resp := c.raw(t, "GET", "GET "+target+" HTTP/1.1\r\nHost: api.bank.test\r\n\r\n")
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// adminBypasses are request targets that an origin which merges slashes,
// resolves dot segments or decodes escapes serves as /admin.
var adminBypasses = []string{
	"/admin", "//admin", "/./admin", "/x/../admin", "/%2e/admin", "/%2E%2e/admin", "/%61dmin",
	"/x//..//admin", "https://api.bank.test//admin", "https://api.bank.test/x/../admin",
}

// TestFirewallSeesNormalisedPath: a firewall rule denying /admin denies
// every spelling of it, sent byte for byte on a raw TLS socket, and a
// request allowed through reaches the origin with the normalised path the
// firewall judged.
func TestFirewallSeesNormalisedPath(t *testing.T) {
	e, seen := adminFirewallEdge(t, nil)
	c := e.dial(t)
	for _, target := range append(adminBypasses, "/%2fadmin", "/%2Fadmin/x", "/x%2f..%2fadmin", "/%5cadmin", "/\\admin") {
		if got := c.rawTarget(t, target); got != http.StatusForbidden {
			t.Errorf("%s: status %d, want 403 (the origin got %q)", target, got, seen())
		}
	}
	for target, want := range map[string]string{
		"/public":                            "/public",
		"//public//a":                        "/public/a",
		"/admin/../public":                   "/public",
		"/%2e%2e/public/%7e":                 "/public/~",
		"https://api.bank.test/x/./public?q": "/x/public?q",
		"/public%2Fa":                        "/public/a",
	} {
		if got := c.rawTarget(t, target); got != 200 {
			t.Errorf("%s: status %d, want 200", target, got)
		}
		if got := seen(); got != want {
			t.Errorf("%s: the origin got %q, want %q", target, got, want)
		}
	}
}

// TestFirewallSeesNormalisedPathHTTP2: the same over HTTP/2, where the
// path arrives in :path.
func TestFirewallSeesNormalisedPathHTTP2(t *testing.T) {
	e, seen := adminFirewallEdge(t, nil)
	cc := e.h2Conn(t)
	get := func(path string) int {
		req, _ := http.NewRequest("GET", "https://api.bank.test/", nil)
		req.URL.Opaque = path // sent as :path, byte for byte
		resp, err := cc.RoundTrip(req)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, path := range []string{"/admin", "/./admin", "/x/../admin", "/%2e/admin", "/%2fadmin", "/x//..//admin"} {
		if got := get(path); got != 403 {
			t.Errorf("%s: status %d, want 403 (the origin got %q)", path, got, seen())
		}
	}
	if got := get("/x/../public/./a"); got != 200 || seen() != "/public/a" {
		t.Errorf("/x/../public/./a: status %d", got)
	}
}

// TestEscapedSlashPolicies: under keep, %2F and %5C stay encoded and never
// separate segments (the firewall sees /%2Fadmin, not /admin, and the
// origin receives the same); under reject they, and '\', are answered 400
// before any rule runs; the other spellings are denied under every policy.
func TestEscapedSlashPolicies(t *testing.T) {
	t.Run("keep", func(t *testing.T) {
		e, seen := adminFirewallEdge(t, &manifest.PathPolicy{EscapedSlashes: manifest.EscapedSlashesKeep})
		c := e.dial(t)
		for _, target := range adminBypasses {
			if got := c.rawTarget(t, target); got != 403 {
				t.Errorf("%s: status %d, want 403", target, got)
			}
		}
		for target, want := range map[string]string{"/%2fadmin": "/%2Fadmin", "/a%5cb": "/a%5Cb", "/a\\b": "/a%5Cb", "/x/..%2fadmin": "/x/..%2Fadmin"} {
			if got := c.rawTarget(t, target); got != 200 {
				t.Errorf("%s: status %d, want 200", target, got)
			}
			if got := seen(); got != want {
				t.Errorf("%s: the origin got %q, want %q", target, got, want)
			}
		}
	})
	t.Run("reject", func(t *testing.T) {
		e, seen := adminFirewallEdge(t, &manifest.PathPolicy{EscapedSlashes: manifest.EscapedSlashesReject})
		c := e.dial(t)
		for _, target := range adminBypasses {
			if got := c.rawTarget(t, target); got != 403 {
				t.Errorf("%s: status %d, want 403", target, got)
			}
		}
		for _, target := range []string{"/%2fpublic", "/a%5Cb", "/a\\b"} {
			if got := c.rawTarget(t, target); got != 400 {
				t.Errorf("%s: status %d, want 400", target, got)
			}
			if got := seen(); got != "" {
				t.Errorf("%s reached the origin as %q", target, got)
			}
		}
	})
}

// TestFirewallPathsWithCurl: curl --path-as-is sends the dot segments
// and doubled slashes as typed; the firewall denies them all.
func TestFirewallPathsWithCurl(t *testing.T) {
	e, _ := adminFirewallEdge(t, nil)
	for _, path := range []string{"//admin", "/./admin", "/x/../admin", "/%2e/admin", "/%2fadmin"} {
		out := e.curl(t, path, "--path-as-is")
		if !strings.HasSuffix(out, "\n403") {
			t.Errorf("curl --path-as-is %s: %q, want 403", path, out)
		}
	}
	if out := e.curl(t, "/x/../public", "--path-as-is"); !strings.HasSuffix(out, "origin served /public\n200") {
		t.Errorf("curl --path-as-is /x/../public: %q", out)
	}
}

// TestPathNormalisationMatchesNginx runs the same targets against nginx
// (location ^~ /admin { return 403; }) and against the edge's firewall
// denying request_uri starts_with /admin: both refuse (any 4xx) or both
// serve, but for the deliberate differences listed.
func TestPathNormalisationMatchesNginx(t *testing.T) {
	nginx := startNginxLocations(t)
	e, _ := adminFirewallEdge(t, nil)
	c := e.dial(t)
	// The edge reads '\' and %5C as '/' (as origins on Windows, and
	// WHATWG URL parsers, do); nginx on Unix reads them literally.
	stricter := map[string]bool{"/\\admin": true, "/%5cadmin": true}
	// A ".." above the root: nginx answers 400, the edge stops at the root
	// as RFC 3986 section 5.2.4 (and Envoy) do, and serves /public.
	laxer := map[string]bool{"/%2e%2e/public": true}
	targets := append(adminBypasses, "/%2fadmin", "/public", "//public", "/admin/../public", "/%2e%2e/public", "/adminx", "/x/.%2e/admin", "/\\admin", "/%5cadmin")
	for _, target := range targets {
		want := nginxStatus(t, nginx, target)
		got := c.rawTarget(t, target)
		if stricter[target] {
			if want == 403 || got != 403 {
				t.Errorf("%s: nginx %d, edge %d; the edge was expected to deny what nginx lets through", target, want, got)
			}
			continue
		}
		if laxer[target] {
			if want != 400 || got != 200 {
				t.Errorf("%s: nginx %d, edge %d; want 400 and 200", target, want, got)
			}
			continue
		}
		if (want >= 400) != (got >= 400) {
			t.Errorf("%s: nginx %d, edge %d", target, want, got)
		}
	}
}

func nginxStatus(t *testing.T, addr, target string) int {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: api.bank.test\r\nConnection: close\r\n\r\n", target)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("nginx, %s: %v", target, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// startNginxLocations runs nginx with a location denying /admin and one
// answering 200, and returns its address.
func startNginxLocations(t *testing.T) string {
	return nginxtest.Start(t, "", func(addr string) string {
		return fmt.Sprintf(`server {
	listen %s;
	location ^~ /admin { return 403; }
	location / { return 200 "$uri\n"; }
}`, addr)
	})
}

// TestRawTargetVariable: the raw request target stays available: the
// firewall's request_target_raw and the application's ${request_uri} and
// ${request_target_raw} hold it as sent, while request_uri and ${uri}
// hold the normalised path.
func TestRawTargetVariable(t *testing.T) {
	origin := headerOrigin(t)
	p := newPKI(t)
	snap := snapshotFor(p, origin.URL)
	app := snap.Resources[2].Spec.(*manifest.ApplicationSpec)
	app.Rules = append(app.Rules, manifest.AppRule{Name: "paths", Behaviors: []manifest.AppBehavior{
		{AddRequestHeader: "X-Uri: ${uri}"},
		{AddRequestHeader: "X-Request-Uri: ${request_uri}"},
		{AddRequestHeader: "X-Raw: ${request_target_raw}"},
	}})
	arg := `/\.\./`
	fw := snap.Resources[3].Spec.(*manifest.FirewallSpec)
	fw.Rules = append([]manifest.FirewallRule{{
		Name:      "raw dot segments",
		Criteria:  [][]manifest.Criterion{{{Variable: "request_target_raw", Operator: "matches", Argument: &arg}}},
		Behaviors: []manifest.FirewallBehavior{{SetCustomResponse: &manifest.CustomResponse{StatusCode: 418, ContentBody: "raw"}}},
	}}, fw.Rules...)
	snap.Resources[4].Spec.(*manifest.DomainSpec).Firewall = "portal"
	e := serveSnapshot(t, p, snap)
	c := e.dial(t)
	if status, body := c.get(t, "/x/../public"); status != 418 || body != "raw" {
		t.Errorf("/x/../public: %d %q, want the firewall's 418 on the raw target", status, body)
	}
	status, body := c.get(t, "//public/./a?q=%2e")
	if status != 200 {
		t.Fatalf("status %d: %s", status, body)
	}
	for _, want := range []string{"x-uri: /public/a", "x-request-uri: //public/./a?q=%2e", "x-raw: //public/./a?q=%2e"} {
		if !strings.Contains(body, want) {
			t.Errorf("the origin did not receive %q:\n%s", want, body)
		}
	}
}

// TestAsteriskFormOnlyForOptionsHTTP2: over HTTP/2 a ":path *" reaches
// the origin for OPTIONS only, as over HTTP/1.1 (where h1 refuses the
// rest); any other method is answered 400 and the origin sees nothing.
// (The test origin, a net/http server, answers "OPTIONS *" 200 itself
// without calling its handler: its 200 is the sign it got the request.)
func TestAsteriskFormOnlyForOptionsHTTP2(t *testing.T) {
	e, seen := adminFirewallEdge(t, nil)
	cc := e.h2Conn(t)
	for _, c := range []struct {
		method string
		status int
		origin string
	}{{"GET", 400, ""}, {"POST", 400, ""}, {"OPTIONS", 200, ""}} {
		req, _ := http.NewRequest(c.method, "https://api.bank.test/", nil)
		req.URL.Opaque = "*"
		resp, err := cc.RoundTrip(req)
		if err != nil {
			t.Fatalf("%s *: %v", c.method, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if got := seen(); resp.StatusCode != c.status || got != c.origin {
			t.Errorf("%s *: status %d, the origin saw %q; want %d and %q", c.method, resp.StatusCode, got, c.status, c.origin)
		}
	}
}
