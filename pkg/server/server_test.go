package server_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/edgectl/edgectl/pkg/edge"
	"github.com/edgectl/edgectl/pkg/manifest"
	"github.com/edgectl/edgectl/pkg/server"
	"github.com/edgectl/edgectl/pkg/state"
)

func TestServesFromState(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	r := start(t, f, nil)
	tests := map[string]struct {
		sni    string
		cert   bool
		want   int
		failed bool
	}{
		"enforce with a valid certificate":    {sni: "api.test", cert: true, want: 200},
		"enforce without a certificate":       {sni: "api.test", failed: true},
		"permissive without a certificate":    {sni: "portal.test", want: 403},
		"permissive with a valid certificate": {sni: "portal.test", cert: true, want: 200},
		"no mTLS":                             {sni: "open.test", want: 200},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := r.client(f, tc.sni, nil, false)
			if tc.cert {
				c = r.client(f, tc.sni, f.valid, false)
			}
			status, version, body, err := get(c, tc.sni, "/accounts")
			if tc.failed {
				if err == nil {
					t.Fatalf("want the handshake refused, got %d", status)
				}
				return
			}
			if err != nil || status != tc.want {
				t.Fatalf("want %d, got %d %v", tc.want, status, err)
			}
			if status == 200 && version != "v1" {
				t.Errorf("Version = %q, want v1", version)
			}
			if tc.cert && status == 200 && !strings.Contains(body, "subject=partner-app") {
				t.Errorf("origin did not get the identity: %q", body)
			}
		})
	}
}

func TestHTTP2(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	r := start(t, f, nil)
	c := r.client(f, "api.test", f.valid, true)
	defer c.CloseIdleConnections()
	resp, err := c.Get("https://api.test/h2")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.ProtoMajor != 2 || resp.StatusCode != 200 {
		t.Fatalf("want 200 over HTTP/2, got %d over %s", resp.StatusCode, resp.Proto)
	}
	// A stream whose :authority belongs to another domain, on a connection
	// whose handshake was for api.test, is misdirected.
	req, _ := http.NewRequest("GET", "https://api.test/other", nil)
	req.Host = "portal.test"
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.ProtoMajor != 2 || resp.StatusCode != http.StatusMisdirectedRequest {
		t.Fatalf("want 421 over HTTP/2, got %d over %s", resp.StatusCode, resp.Proto)
	}
}

func TestReloadSwapsRuntime(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	handled := make(chan int64, 64)
	r := start(t, f, func(c *server.Config) {
		server.OnEventHandled(c, func(ev state.WatchEvent) {
			if ev.Snapshot != nil {
				select {
				case handled <- ev.Snapshot.Serial:
				default:
				}
			}
		})
	})
	c := r.client(f, "open.test", nil, false)
	if _, v, _, err := get(c, "open.test", "/"); err != nil || v != "v1" {
		t.Fatalf("before reload: version %q, %v", v, err)
	}
	f.write(t, f.snapshot(2, "v2"))
	eventually(t, "serial 2 to serve", func() bool {
		_, v, _, err := get(c, "open.test", "/")
		return err == nil && v == "v2"
	})
	if got := r.srv.State().Serial; got != 2 {
		t.Errorf("State().Serial = %d, want 2", got)
	}
	if got := r.metric(t, `edgectl_reloads_total{result="success"}`); got != "1" {
		t.Errorf("reloads success = %q, want 1", got)
	}
	if got := r.metric(t, "edgectl_state_serial"); got != "2" {
		t.Errorf("edgectl_state_serial = %q, want 2", got)
	}
	// Writing the same serial again does not recompile: once the server
	// has handled the file's change, nothing was reloaded.
	for len(handled) > 0 {
		<-handled
	}
	f.write(t, f.snapshot(2, "v2"))
	select {
	case serial := <-handled:
		if serial != 2 {
			t.Fatalf("handled serial %d, want 2", serial)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the rewritten state file was not noticed")
	}
	if got := r.metric(t, `edgectl_reloads_total{result="success"}`); got != "1" {
		t.Errorf("an unchanged serial was reloaded: success = %q", got)
	}
	// Reload (SIGHUP) recompiles even an unchanged serial.
	if err := r.srv.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := r.metric(t, `edgectl_reloads_total{result="success"}`); got != "2" {
		t.Errorf("after Reload: success = %q, want 2", got)
	}
}

func TestFailedReloadKeepsServing(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	r := start(t, f, nil)
	c := r.client(f, "api.test", f.valid, false)
	serving := func(want string) {
		t.Helper()
		status, v, _, err := get(c, "api.test", "/")
		if err != nil || status != 200 || v != want {
			t.Fatalf("want 200 from %s, got %d from %q: %v", want, status, v, err)
		}
	}
	ready := func() string {
		code, body := r.admin(t, "/readyz")
		if code != 200 {
			t.Fatalf("/readyz = %d %q", code, body)
		}
		return body
	}

	// A corrupt file.
	f.writeRaw(t, []byte(`{"formatVersion": 1, "serial": 7, "resources": [`))
	eventually(t, "the corrupt state to be reported", func() bool { return strings.Contains(ready(), "last reload failed") })
	serving("v1")
	if body := ready(); !strings.Contains(body, "serving serial 1") || !strings.Contains(body, "state is unreadable") {
		t.Errorf("/readyz = %q", body)
	}
	// At least one: a write's later event may read the same bad file again
	// (state.FileStore.WatchWith), and each read that fails counts.
	if got := r.metric(t, `edgectl_reloads_total{result="failure"}`); got == "" || got == "0" {
		t.Errorf("reloads failure = %q, want at least 1", got)
	}
	if !strings.Contains(r.log.String(), "reload failed; still serving the previous state") {
		t.Errorf("log: %s", r.log.String())
	}

	// A snapshot that does not compile names the resource.
	bad := f.snapshot(2, "v2")
	bad.Resources[len(bad.Resources)-1].Spec.(*manifest.DomainSpec).Certificate = "missing"
	f.write(t, bad)
	eventually(t, "the compile error to be reported", func() bool { return strings.Contains(ready(), "Domain/portal") })
	serving("v1")
	if st := r.srv.State(); st.Serial != 1 || !strings.Contains(st.LastError, `serial 2: Domain/portal spec.certificate: Certificate "missing" is missing or broken`) {
		t.Errorf("State() = serial %d, lastError %q", st.Serial, st.LastError)
	}

	// A good apply recovers.
	f.write(t, f.snapshot(3, "v3"))
	eventually(t, "serial 3", func() bool { return strings.Contains(ready(), "serving serial 3") })
	serving("v3")
	if body := ready(); strings.Contains(body, "failed") {
		t.Errorf("/readyz still reports a failure: %q", body)
	}
	if st := r.srv.State(); st.LastError != "" {
		t.Errorf("lastError = %q after a good reload", st.LastError)
	}
}

func TestAdminEndpoints(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	r := start(t, f, nil)
	if code, body := r.admin(t, "/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz = %d %q", code, body)
	}
	if code, body := r.admin(t, "/readyz"); code != 200 || body != "ready: serving serial 1\n" {
		t.Errorf("/readyz = %d %q", code, body)
	}
	_, body := r.admin(t, "/state")
	var got server.StateInfo
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatalf("/state: %v: %s", err, body)
	}
	applied := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	want := server.StateInfo{Serial: 1, Lineage: f.lineage, AppliedAt: &applied, Domains: []server.DomainInfo{
		{Name: "api", Hostnames: []string{"api.test"}, Mode: "enforce"},
		{Name: "open", Hostnames: []string{"open.test"}, Mode: "off"},
		{Name: "portal", Hostnames: []string{"portal.test"}, Mode: "permissive"},
	}, Store: server.StoreInfo{Kind: "file", Connected: true}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("/state (-want +got):\n%s", diff)
	}
	if code, _ := r.admin(t, "/nothing"); code != 404 {
		t.Errorf("/nothing = %d", code)
	}
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	r := start(t, f, nil)
	get(r.client(f, "api.test", f.valid, false), "api.test", "/")
	get(r.client(f, "api.test", f.valid, false), "api.test", "/")
	get(r.client(f, "portal.test", nil, false), "portal.test", "/")
	get(r.client(f, "portal.test", f.untrusted, false), "portal.test", "/")
	get(r.client(f, "api.test", nil, false), "api.test", "/")
	get(r.client(f, "api.test", f.untrusted, false), "api.test", "/")
	get(r.client(f, "unknown.test", nil, false), "unknown.test", "/")
	tests := map[string]string{
		`edgectl_requests_total{code="200",domain="api"}`:                                        "2",
		`edgectl_requests_total{code="403",domain="portal"}`:                                     "2",
		`edgectl_client_verifications_total{domain="api",result="SUCCESS"}`:                      "2",
		`edgectl_client_verifications_total{domain="portal",result="NONE"}`:                      "1",
		`edgectl_client_verifications_total{domain="portal",result="FAILED"}`:                    "1",
		`edgectl_firewall_decisions_total{action="deny",domain="portal",rule="deny unverified"}`: "2",
		`edgectl_upstream_duration_seconds_count{domain="api"}`:                                  "2",
		`edgectl_tls_handshake_errors_total{reason="no_certificate"}`:                            "1",
		`edgectl_tls_handshake_errors_total{reason="unknown_ca"}`:                                "1",
		`edgectl_tls_handshake_errors_total{reason="unrecognized_name"}`:                         "1",
		`edgectl_reloads_total{result="success"}`:                                                "0",
		`edgectl_reloads_total{result="failure"}`:                                                "0",
		`edgectl_state_serial`:                           "1",
		`edgectl_runtime_domains`:                        "3",
		`edgectl_access_log_dropped_total`:               "0",
		`edgectl_state_store_connected`:                  "1",
		`edgectl_client_connections_refused_total`:       "0",
		`edgectl_http2_timeouts_total{timeout="header"}`: "0",
		`edgectl_http2_timeouts_total{timeout="body"}`:   "0",
		`edgectl_http2_timeouts_total{timeout="write"}`:  "0",
	}
	// Handshake errors are logged after the client sees the alert.
	eventually(t, "handshake errors to be counted", func() bool {
		return r.metric(t, `edgectl_tls_handshake_errors_total{reason="unrecognized_name"}`) == "1"
	})
	for series, want := range tests {
		if got := r.metric(t, series); got != want {
			t.Errorf("%s = %q, want %q", series, got, want)
		}
	}
}

func TestAccessLog(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	r := start(t, f, nil)
	before := time.Now().Truncate(time.Millisecond) // the log's precision
	get(r.client(f, "api.test", f.valid, false), "api.test", "/accounts?secret=1")
	get(r.client(f, "portal.test", nil, false), "portal.test", "/login")
	after := time.Now()
	r.stop(t) // flushes the log
	lines := strings.Split(strings.TrimSpace(r.access.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("want 2 lines, got %d:\n%s", len(lines), r.access.String())
	}
	type entry struct {
		Time           time.Time `json:"time"`
		Domain         string    `json:"domain"`
		Host           string    `json:"host"`
		Method         string    `json:"method"`
		Path           string    `json:"path"`
		Status         int       `json:"status"`
		Bytes          int64     `json:"bytes"`
		DurationMS     float64   `json:"duration_ms"`
		Verify         string    `json:"verify"`
		Fingerprint    string    `json:"client_fingerprint"`
		FirewallRule   string    `json:"firewall_rule"`
		FirewallAction string    `json:"firewall_action"`
		UpstreamMS     *float64  `json:"upstream_ms"`
		UpstreamStatus int       `json:"upstream_status"`
		Remote         string    `json:"remote"`
		Error          string    `json:"error"`
	}
	var got []entry
	for _, line := range lines {
		var e entry
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("not JSON: %v: %s", err, line)
		}
		if e.Time.Before(before) || e.Time.After(after) || e.Remote == "" || !strings.HasPrefix(e.Remote, "127.0.0.1:") {
			t.Errorf("time not the request's (between %v and %v) or remote missing: %s", before, after, line)
		}
		got = append(got, e)
	}
	want := []entry{
		{Domain: "api", Host: "api.test", Method: "GET", Path: "/accounts", Status: 200, Verify: "SUCCESS", Fingerprint: fmt.Sprintf("%x", sha256.Sum256(f.valid.Cert.Raw)), UpstreamStatus: 200},
		{Domain: "portal", Host: "portal.test", Method: "GET", Path: "/login", Status: 403, Bytes: 10, Verify: "NONE", FirewallRule: "deny unverified", FirewallAction: "deny"},
	}
	ignore := cmpopts.IgnoreFields(entry{}, "Time", "Remote", "DurationMS", "UpstreamMS", "Bytes")
	if diff := cmp.Diff(want, got, ignore); diff != "" {
		t.Errorf("access log (-want +got):\n%s", diff)
	}
	if got[0].UpstreamMS == nil || got[1].UpstreamMS != nil || got[0].Bytes == 0 {
		t.Errorf("upstream_ms or bytes wrong: %+v", got)
	}
	for _, forbidden := range []string{"BEGIN", "PRIVATE", "secret=1"} {
		if strings.Contains(r.access.String()+r.log.String(), forbidden) {
			t.Errorf("%q in the logs", forbidden)
		}
	}
}

func TestShutdownDrainsInFlight(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	r := start(t, f, func(c *server.Config) { c.ShutdownTimeout = 5 * time.Second })
	c := r.client(f, "open.test", nil, false)
	type result struct {
		status int
		body   string
		err    error
	}
	res := make(chan result, 1)
	go func() {
		status, _, body, err := get(c, "open.test", "/slow")
		res <- result{status, body, err}
	}()
	<-f.arrived
	r.cancel()
	// While draining, /readyz says so and new connections are refused.
	eventually(t, "the edge listener to close", func() bool {
		conn, err := net.DialTimeout("tcp", r.srv.Addr().String(), time.Second)
		if err == nil {
			conn.Close()
		}
		return err != nil
	})
	select {
	case <-r.done:
		t.Fatal("Serve returned before the in-flight request finished")
	default:
	}
	close(f.release)
	got := <-res
	if got.err != nil || got.status != 200 || !strings.Contains(got.body, "origin /slow") {
		t.Fatalf("in-flight request: %d %q %v", got.status, got.body, got.err)
	}
	select {
	case err := <-r.done:
		close(r.done)
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after draining")
	}
	if !strings.Contains(r.access.String(), `"path":"/slow","status":200`) {
		t.Errorf("the drained request is missing from the access log: %s", r.access.String())
	}
}

func TestReloadDuringInFlightRequest(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	r := start(t, f, nil)
	c := r.client(f, "open.test", nil, false)
	var wg sync.WaitGroup
	wg.Add(1)
	var version string
	var status int
	go func() {
		defer wg.Done()
		var err error
		status, version, _, err = get(c, "open.test", "/slow")
		if err != nil {
			t.Error(err)
		}
	}()
	<-f.arrived
	f.write(t, f.snapshot(2, "v2"))
	eventually(t, "serial 2", func() bool { return r.srv.State().Serial == 2 })
	close(f.release)
	wg.Wait()
	// The request finishes on the runtime it started with.
	if status != 200 || version != "v1" {
		t.Errorf("in-flight request: %d, version %q, want 200 from v1", status, version)
	}
}

func TestHandshakeTimeout(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	r := start(t, f, func(c *server.Config) {
		c.HandshakeTimeout = 200 * time.Millisecond
		c.HeaderTimeout = 10 * time.Second
	})
	conn, err := net.Dial("tcp", r.srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	began := time.Now()
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = conn.Read(make([]byte, 1))
	if took := time.Since(began); err == nil || took > 2*time.Second {
		t.Fatalf("a silent client was not cut off after the handshake timeout: %v after %s", err, took)
	}
	eventually(t, "the timeout to be counted", func() bool {
		return r.metric(t, `edgectl_tls_handshake_errors_total{reason="timeout"}`) == "1"
	})
	// After the handshake the header timeout applies, not the handshake's.
	c := r.client(f, "open.test", nil, false)
	if status, _, _, err := get(c, "open.test", "/"); err != nil || status != 200 {
		t.Fatalf("%d %v", status, err)
	}
	time.Sleep(400 * time.Millisecond)
	if status, _, _, err := get(c, "open.test", "/"); err != nil || status != 200 {
		t.Fatalf("keep-alive request after the handshake timeout: %d %v", status, err)
	}
}

func TestStartupErrors(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		write   func(*testing.T, *fixture)
		is      error
		compile bool
		want    string
	}{
		"empty store": {write: func(t *testing.T, f *fixture) { f.statePath += ".none" }, is: server.ErrNothingToServe, want: "is empty; run edgectl apply first"},
		"corrupt":     {write: func(t *testing.T, f *fixture) { f.writeRaw(t, []byte("{")) }, is: state.ErrCorrupt, want: "state is unreadable"},
		"no domain": {write: func(t *testing.T, f *fixture) {
			s := f.snapshot(4, "v")
			s.Resources = s.Resources[:3]
			f.write(t, s)
		}, is: server.ErrNothingToServe, want: "serial 4 of the state"},
		"does not compile": {write: func(t *testing.T, f *fixture) {
			s := f.snapshot(5, "v")
			s.Resources[4].Spec.(*manifest.DomainSpec).Application = "gone"
			f.write(t, s)
		}, compile: true, want: `cannot serve serial 5 of the state`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			tc.write(t, f)
			_, err := server.New(context.Background(), f.config())
			if err == nil {
				t.Fatal("want an error")
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v is not %v", err, tc.is)
			}
			var ce *edge.CompileError
			if tc.compile && !errors.As(err, &ce) {
				t.Errorf("error %v is not a compile error", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

func TestListenBusyPort(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	cfg := f.config()
	cfg.Listen = busy.Addr().String()
	srv, err := server.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen(); err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("want address already in use, got %v", err)
	}
}

// TestReadyzWithoutDomain: a node whose state has no Domain refuses every
// handshake, so /readyz sends the load balancer elsewhere, and says why.
func TestReadyzWithoutDomain(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	r := start(t, f, nil)
	if code, body := r.admin(t, "/readyz"); code != 200 {
		t.Fatalf("/readyz with domains = %d %q, want 200", code, body)
	}
	empty := f.snapshot(2, "v2")
	kept := empty.Resources[:0]
	for _, res := range empty.Resources {
		if res.Kind != manifest.KindDomain {
			kept = append(kept, res)
		}
	}
	empty.Resources = kept
	f.write(t, empty)
	eventually(t, "serial 2 to be served", func() bool { return r.srv.Runtime().Serial() == 2 })
	code, body := r.admin(t, "/readyz")
	if code != http.StatusServiceUnavailable || body != "not ready: serial 2 has no Domain, so every handshake is refused\n" {
		t.Errorf("/readyz without a Domain = %d %q, want 503 naming the reason", code, body)
	}
	f.write(t, f.snapshot(3, "v3"))
	eventually(t, "serial 3 to be served", func() bool { return r.srv.Runtime().Serial() == 3 })
	if code, body := r.admin(t, "/readyz"); code != 200 || !strings.Contains(body, "ready: serving serial 3") {
		t.Errorf("/readyz with domains again = %d %q, want 200", code, body)
	}
}

// TestFixedState serves one snapshot that no one can write: the source of
// edgectl test's in-process edge.
func TestFixedState(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	store := server.FixedState("built from the manifests", f.snapshot(4, "v4"))
	if err := store.Write(context.Background(), f.snapshot(5, "v5"), "", 4); err == nil || !strings.Contains(err.Error(), "built from the manifests is fixed") {
		t.Errorf("Write = %v, want a refusal naming the state", err)
	}
	r := start(t, f, func(c *server.Config) { c.Store, c.PollInterval = store, -1 })
	if _, v, _, err := get(r.client(f, "open.test", nil, false), "open.test", "/"); err != nil || v != "v4" {
		t.Errorf("version %q, %v; want v4", v, err)
	}
}
