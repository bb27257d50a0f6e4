package cli_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/edgectl/edgectl/internal/tooltest"
	"github.com/edgectl/edgectl/pkg/cli"
	"github.com/edgectl/edgectl/pkg/pki/pkitest"
)

// These tests run "edgectl serve" as a child process (the test binary acts
// as edgectl, see TestMain) and talk to it with Go, curl and openssl, as a
// user would.

// serveEnv is a directory with a test PKI, manifests for an Enforce domain
// (api.bank.test) and a Permissive one (portal.bank.test), and an origin
// that echoes the request headers it received.
type serveEnv struct {
	dir, state, root    string
	partner, partnerKey string
	rogue, rogueKey     string
	partnerCert         tls.Certificate
	roots               *x509.CertPool
	origin              *httptest.Server
}

func newServeEnv(t *testing.T) *serveEnv {
	t.Helper()
	e := &serveEnv{dir: t.TempDir()}
	e.state = filepath.Join(e.dir, "state.json")
	e.origin = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s\n", r.Method, r.URL.Path)
		r.Header.Write(w)
	}))
	t.Cleanup(e.origin.Close)
	edgeRoot, partners, rogue := pkitest.NewCA("edge root"), pkitest.NewCA("partner ca"), pkitest.NewCA("rogue ca")
	write := func(name string, data []byte) string {
		p := filepath.Join(e.dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	e.root = write("root.pem", edgeRoot.CertPEM())
	e.roots = edgeRoot.Pool()
	server := edgeRoot.IssueServer([]string{"api.bank.test", "portal.bank.test"})
	write("server.pem", server.ChainPEM())
	write("server-key.pem", server.KeyPEM())
	write("partner-ca.pem", partners.CertPEM())
	partner := partners.IssueClient("partner-app")
	e.partner, e.partnerKey = write("partner.pem", partner.CertPEM()), write("partner-key.pem", partner.KeyPEM())
	e.partnerCert = partner.TLSCertificate()
	r := rogue.IssueClient("rogue-app")
	e.rogue, e.rogueKey = write("rogue.pem", r.CertPEM()), write("rogue-key.pem", r.KeyPEM())
	if err := os.MkdirAll(filepath.Join(e.dir, "m"), 0o755); err != nil {
		t.Fatal(err)
	}
	e.manifests(t, "v1")
	return e
}

// manifests writes the manifests; version is sent back in the response
// header Version, so a client sees which snapshot answered.
func (e *serveEnv) manifests(t *testing.T, version string) {
	t.Helper()
	m := fmt.Sprintf(`apiVersion: edgectl.dev/v1
kind: Certificate
metadata: {name: edge}
spec: {certificateFile: ../server.pem, privateKeyFile: ../server-key.pem}
---
apiVersion: edgectl.dev/v1
kind: TrustedCA
metadata: {name: partners}
spec: {certificateFile: ../partner-ca.pem}
---
apiVersion: edgectl.dev/v1
kind: Application
metadata: {name: api}
spec:
  origin: {url: %q}
  rules:
    - name: identity
      behaviors:
        - addRequestHeader: "Client-Cert-Subject: ${ssl_client_s_dn_parsed}"
        - addRequestHeader: "Client-Verify: ${ssl_client_verify}"
    - name: version
      phase: response
      behaviors:
        - addResponseHeader: "Version: %s"
---
apiVersion: edgectl.dev/v1
kind: Firewall
metadata: {name: portal}
spec:
  rules:
    - name: deny unverified
      criteria:
        - - {variable: client_certificate_validation, operator: is_not_equal, argument: "true"}
      behaviors:
        - deny: true
---
apiVersion: edgectl.dev/v1
kind: Domain
metadata: {name: api}
spec:
  hostnames: [api.bank.test]
  certificate: edge
  application: api
  mtls: {enabled: true, verification: enforce, trustedCA: partners}
---
apiVersion: edgectl.dev/v1
kind: Domain
metadata: {name: portal}
spec:
  hostnames: [portal.bank.test]
  certificate: edge
  application: api
  firewall: portal
  mtls: {enabled: true, verification: permissive, trustedCA: partners}
`, e.origin.URL, version)
	if err := os.WriteFile(filepath.Join(e.dir, "m", "edge.yaml"), []byte(m), 0o644); err != nil {
		t.Fatal(err)
	}
}

// apply runs edgectl apply in-process (the serve process is what these
// tests watch; an apply process would only add its start-up time).
func (e *serveEnv) apply(t *testing.T) {
	t.Helper()
	var out strings.Builder
	code := cli.Run(context.Background(), []string{"apply", "-f", filepath.Join(e.dir, "m"), "--state", e.state},
		&cli.IO{In: strings.NewReader(""), Out: &out, ErrOut: &out})
	if code != 0 {
		t.Fatalf("apply: exit %d\n%s", code, out.String())
	}
}

// serveProc is a running "edgectl serve".
type serveProc struct {
	cmd         *exec.Cmd
	edge, admin string
	stderr      *lockedBuffer
	accessLog   string
	exited      chan struct{}
	exitErr     error
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) add(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.WriteString(s)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

var listeningRE = regexp.MustCompile(`listening on https://(\S+) .*admin on http://(\S+)$`)

// serve starts edgectl serve on free ports and waits until it is ready.
func (e *serveEnv) serve(t *testing.T) *serveProc {
	t.Helper()
	return e.serveWith(t, filepath.Join(e.dir, "access.log"))
}

// serveWith is serve with the access log at accessLog ("" for none) and
// more flags.
func (e *serveEnv) serveWith(t *testing.T, accessLog string, flags ...string) *serveProc {
	t.Helper()
	p := &serveProc{stderr: &lockedBuffer{}, accessLog: accessLog, exited: make(chan struct{})}
	args := append([]string{"serve", "--state", e.state, "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0",
		"--access-log", p.accessLog, "--shutdown-timeout", "5s", "--key-dir", "m"}, flags...)
	p.cmd = exec.Command("edgectl", args...)
	p.cmd.Dir = e.dir
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan [2]string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			p.stderr.add(line + "\n")
			if m := listeningRE.FindStringSubmatch(line); m != nil {
				ready <- [2]string{m[1], m[2]}
			}
		}
		p.exitErr = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			p.cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			t.Logf("edgectl serve stderr:\n%s", p.stderr.String())
		}
	})
	select {
	case addrs := <-ready:
		p.edge, p.admin = addrs[0], addrs[1]
	case <-p.exited:
		t.Fatalf("edgectl serve exited: %v\n%s", p.exitErr, p.stderr.String())
	case <-time.After(15 * time.Second):
		t.Fatalf("edgectl serve did not start:\n%s", p.stderr.String())
	}
	return p
}

func (p *serveProc) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + p.admin + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func (p *serveProc) waitFor(t *testing.T, what, path, substr string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, body := p.get(t, path)
		if strings.Contains(body, substr) {
			return body
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s: %s is %q", what, path, body)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// client is a Go HTTPS client of the edge presenting the partner's
// certificate; keepAlive false opens a connection per request.
func (e *serveEnv) client(p *serveProc, keepAlive bool) *http.Client {
	tr := &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: e.roots, Certificates: []tls.Certificate{e.partnerCert}},
		DisableKeepAlives: !keepAlive,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, p.edge)
		},
	}
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// needTool skips t when name (curl, openssl: Debian packages of the
// same name) is not installed, or fails it in CI.
func needTool(t *testing.T, name string) { tooltest.Path(t, name, name) }

func (e *serveEnv) curl(t *testing.T, p *serveProc, host string, args ...string) (string, error) {
	t.Helper()
	_, port, _ := net.SplitHostPort(p.edge)
	all := append([]string{"-sS", "--max-time", "10", "--cacert", e.root, "--resolve", host + ":" + port + ":127.0.0.1"}, args...)
	all = append(all, "https://"+host+":"+port+"/accounts")
	out, err := exec.Command("curl", all...).CombinedOutput()
	return string(out), err
}

func TestServeProcess(t *testing.T) {
	t.Parallel()
	e := newServeEnv(t)
	e.apply(t)
	p := e.serve(t)
	if !strings.Contains(p.stderr.String(), "(serial 1, domains: api, portal)") {
		t.Errorf("startup line: %s", p.stderr.String())
	}
	if code, body := p.get(t, "/readyz"); code != 200 || body != "ready: serving serial 1\n" {
		t.Fatalf("/readyz = %d %q", code, body)
	}

	t.Run("curl with a partner certificate", func(t *testing.T) {
		needTool(t, "curl")
		out, err := e.curl(t, p, "api.bank.test", "-i", "--cert", e.partner, "--key", e.partnerKey)
		if err != nil || !strings.Contains(out, "HTTP/2 200") || !strings.Contains(out, "Client-Cert-Subject: partner-app") || !strings.Contains(out, "Client-Verify: SUCCESS") {
			t.Fatalf("curl: %v\n%s", err, out)
		}
	})
	t.Run("curl without a certificate", func(t *testing.T) {
		needTool(t, "curl")
		out, err := e.curl(t, p, "api.bank.test", "--tls-max", "1.2")
		if err == nil || !strings.Contains(out, "alert handshake failure") {
			t.Fatalf("want the handshake refused, got %v\n%s", err, out)
		}
		out, err = e.curl(t, p, "api.bank.test", "--tls-max", "1.2", "--cert", e.rogue, "--key", e.rogueKey)
		if err == nil || !strings.Contains(out, "alert unknown ca") {
			t.Fatalf("want unknown ca, got %v\n%s", err, out)
		}
		out, err = e.curl(t, p, "portal.bank.test", "-o", "/dev/null", "-w", "%{http_code}")
		if err != nil || out != "403" {
			t.Fatalf("portal without a certificate: %v %q", err, out)
		}
	})
	t.Run("openssl s_client", func(t *testing.T) {
		needTool(t, "openssl")
		sClient := func(extra ...string) string {
			args := append([]string{"s_client", "-ign_eof", "-connect", p.edge, "-servername", "api.bank.test", "-CAfile", e.root}, extra...)
			cmd := exec.Command("openssl", args...)
			cmd.Stdin = strings.NewReader("GET /s_client HTTP/1.1\r\nHost: api.bank.test\r\nConnection: close\r\n\r\n")
			out, _ := cmd.CombinedOutput()
			return string(out)
		}
		if out := sClient(); !strings.Contains(out, "alert certificate required") || strings.Contains(out, "HTTP/1.1 200") {
			t.Errorf("without a certificate (TLS 1.3): want alert certificate required:\n%s", out)
		}
		if out := sClient("-tls1_2"); !strings.Contains(out, "alert handshake failure") {
			t.Errorf("without a certificate (TLS 1.2): want alert handshake failure:\n%s", out)
		}
		if out := sClient("-cert", e.partner, "-key", e.partnerKey); !strings.Contains(out, "HTTP/1.1 200 OK") || !strings.Contains(out, "Client-Cert-Subject: partner-app") {
			t.Errorf("with a certificate: want 200:\n%s", out)
		}
	})

	t.Run("apply while serving drops no request", func(t *testing.T) {
		// Requests run, alternately on a keep-alive connection and on new
		// ones, until five applies are done and at least 200 were sent.
		clients := []*http.Client{e.client(p, true), e.client(p, false)}
		var failures []string
		seen := map[string]int{}
		applied, done := make(chan struct{}), make(chan int)
		go func() {
			n := 0
			for ; n < 2000; n++ {
				if n >= 200 {
					select {
					case <-applied:
						done <- n
						return
					default:
					}
				}
				resp, err := clients[n%2].Get("https://api.bank.test/loop")
				if err != nil {
					failures = append(failures, err.Error())
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					failures = append(failures, resp.Status)
				}
				seen[resp.Header.Get("Version")]++
			}
			done <- n
		}()
		for v := 2; v <= 6; v++ {
			e.manifests(t, fmt.Sprintf("v%d", v))
			e.apply(t)
			time.Sleep(100 * time.Millisecond)
		}
		close(applied)
		n := <-done
		if len(failures) > 0 {
			t.Errorf("%d of %d requests failed during the applies: %q", len(failures), n, failures)
		}
		t.Logf("%d requests; versions that answered them: %v", n, seen)
		p.waitFor(t, "serial 6", "/readyz", "serving serial 6")
		resp, err := clients[0].Get("https://api.bank.test/after")
		if err != nil || resp.Header.Get("Version") != "v6" {
			t.Fatalf("after the applies: %v %v", err, resp)
		}
		resp.Body.Close()
	})

	t.Run("a broken state keeps the old runtime", func(t *testing.T) {
		good, err := os.ReadFile(e.state)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(e.state, []byte(`{"formatVersion": 1, "resources": [`), 0o644); err != nil {
			t.Fatal(err)
		}
		body := p.waitFor(t, "the failure", "/readyz", "last reload failed")
		if !strings.Contains(body, "serving serial 6") || !strings.Contains(body, "state is unreadable") {
			t.Errorf("/readyz = %q", body)
		}
		_, metrics := p.get(t, "/metrics")
		if !regexp.MustCompile(`(?m)^edgectl_reloads_total\{result="failure"\} [1-9]`).MatchString(metrics) {
			t.Errorf("no failed reload in /metrics")
		}
		if _, state := p.get(t, "/state"); !strings.Contains(state, `"lastError": "`) {
			t.Errorf("/state has no lastError: %s", state)
		}
		resp, err := e.client(p, false).Get("https://api.bank.test/still")
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("not serving with a broken state: %v %v", err, resp)
		}
		resp.Body.Close()
		if !strings.Contains(p.stderr.String(), "reload failed; still serving the previous state") {
			t.Errorf("the failure is not logged:\n%s", p.stderr.String())
		}
		// Restore the file (as from its .backup) and apply a change.
		if err := os.WriteFile(e.state, good, 0o644); err != nil {
			t.Fatal(err)
		}
		e.manifests(t, "v7")
		e.apply(t)
		body = p.waitFor(t, "serial 7", "/readyz", "serving serial 7")
		if strings.Contains(body, "failed") {
			t.Errorf("/readyz after recovery = %q", body)
		}
	})

	t.Run("SIGHUP reloads", func(t *testing.T) {
		_, before := p.get(t, "/metrics")
		if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			_, after := p.get(t, "/metrics")
			if reloads(after) > reloads(before) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("SIGHUP did not reload: %d", reloads(after))
			}
			time.Sleep(25 * time.Millisecond)
		}
	})

	t.Run("SIGTERM exits 0", func(t *testing.T) {
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		select {
		case <-p.exited:
		case <-time.After(10 * time.Second):
			t.Fatal("edgectl serve did not exit after SIGTERM")
		}
		if p.exitErr != nil {
			t.Fatalf("exit: %v\n%s", p.exitErr, p.stderr.String())
		}
		if !strings.HasSuffix(p.stderr.String(), "edgectl serve: stopped\n") {
			t.Errorf("stderr does not end with the stop line:\n%s", p.stderr.String())
		}
		log, err := os.ReadFile(p.accessLog)
		if err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(string(log), "\n"); n < 200 {
			t.Errorf("access log has %d lines, want at least 200", n)
		}
		for _, s := range []string{"BEGIN", "PRIVATE"} {
			if strings.Contains(string(log), s) || strings.Contains(p.stderr.String(), s) {
				t.Errorf("%q logged", s)
			}
		}
	})
}

var reloadsRE = regexp.MustCompile(`(?m)^edgectl_reloads_total\{result="success"\} (\d+)`)

func reloads(metrics string) int {
	m := reloadsRE.FindStringSubmatch(metrics)
	if m == nil {
		return -1
	}
	var n int
	fmt.Sscan(m[1], &n)
	return n
}
