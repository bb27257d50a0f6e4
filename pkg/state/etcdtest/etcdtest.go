// Package etcdtest starts a real etcd server for a test: on loopback ports
// of its own, with a data directory of its own, stopped when the test ends.
// It needs the etcd binary (Debian's etcd-server package; make tools
// installs it). Without it, a test is skipped, or fails when CI=true.
package etcdtest

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/edgectl/edgectl/internal/tooltest"
	"github.com/edgectl/edgectl/pkg/pki/pkitest"
)

// Options choose how the server is started.
type Options struct {
	// TLS serves clients over TLS and requires client certificates issued
	// by the server's test CA (see Server.CACert, ClientCert, ClientKey).
	TLS bool
}

// Server is one etcd member started for a test.
type Server struct {
	// Endpoint is the client address, 127.0.0.1:PORT.
	Endpoint string
	// CACert, ClientCert and ClientKey are PEM files a client needs when
	// the server was started with TLS; empty otherwise.
	CACert, ClientCert, ClientKey string

	t      testing.TB
	bin    string
	args   []string
	scheme string
	tls    *tls.Config
	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	stderr *lockedBuffer
}

// Binary returns the path of the etcd binary, skipping t (or failing it
// when the environment variable CI is "true") when there is none.
func Binary(t testing.TB) string {
	t.Helper()
	return tooltest.Path(t, "etcd", "etcd-server")
}

// Start starts an etcd member, waits until it is healthy, and stops it when
// the test ends.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	s := &Server{t: t, bin: Binary(t), scheme: "http"}
	dir := t.TempDir()
	if opts.TLS {
		s.setupTLS(t, dir)
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		client, peer := freePort(t), freePort(t)
		s.Endpoint = fmt.Sprintf("127.0.0.1:%d", client)
		peerURL := fmt.Sprintf("http://127.0.0.1:%d", peer)
		clientURL := s.scheme + "://" + s.Endpoint
		s.args = []string{
			"--name", "edgectl-test",
			"--data-dir", filepath.Join(dir, fmt.Sprintf("data-%d", attempt)),
			"--listen-client-urls", clientURL, "--advertise-client-urls", clientURL,
			"--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL,
			"--initial-cluster", "edgectl-test=" + peerURL, "--initial-cluster-state", "new",
			"--heartbeat-interval", "50", "--election-timeout", "500",
			"--logger", "zap", "--log-outputs", "stderr", "--log-level", "error",
		}
		if opts.TLS {
			s.args = append(s.args,
				"--cert-file", filepath.Join(dir, "server.pem"), "--key-file", filepath.Join(dir, "server-key.pem"),
				"--trusted-ca-file", s.CACert, "--client-cert-auth")
		}
		if lastErr = s.start(); lastErr == nil {
			t.Cleanup(s.Stop)
			return s
		}
		s.Stop()
	}
	t.Fatalf("etcdtest: %v", lastErr)
	return nil
}

func (s *Server) setupTLS(t testing.TB, dir string) {
	ca := pkitest.NewCA("etcd test CA")
	server := ca.IssueServer([]string{"127.0.0.1", "localhost"},
		pkitest.WithExtKeyUsage(x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth))
	client := ca.IssueClient("edgectl")
	s.CACert = filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(s.CACert, ca.CertPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := server.WriteFiles(dir, "server"); err != nil {
		t.Fatal(err)
	}
	var err error
	if s.ClientCert, s.ClientKey, err = client.WriteFiles(dir, "client"); err != nil {
		t.Fatal(err)
	}
	s.scheme = "https"
	s.tls = &tls.Config{RootCAs: ca.Pool(), Certificates: []tls.Certificate{client.TLSCertificate()}}
}

// Location returns the etcd:// state location of prefix on this server
// (without TLS parameters).
func (s *Server) Location(prefix string) string {
	return "etcd://" + s.Endpoint + "/" + strings.TrimPrefix(prefix, "/")
}

func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stderr = &lockedBuffer{}
	cmd := exec.Command(s.bin, s.args...)
	cmd.Stdout = s.stderr
	cmd.Stderr = s.stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting etcd: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	s.cmd, s.exited = cmd, exited
	s.mu.Unlock()
	err := s.waitHealthy(exited)
	s.mu.Lock()
	return err
}

func (s *Server) waitHealthy(exited chan struct{}) error {
	hc := &http.Client{Timeout: time.Second, Transport: &http.Transport{TLSClientConfig: s.tls}}
	defer hc.CloseIdleConnections()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return fmt.Errorf("etcd exited before it was healthy:\n%s", s.stderr.String())
		default:
		}
		resp, err := hc.Get(s.scheme + "://" + s.Endpoint + "/health")
		if err == nil {
			var body bytes.Buffer
			_, _ = body.ReadFrom(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && strings.Contains(body.String(), `"true"`) {
				return nil
			}
		}
		time.Sleep(25 * time.Millisecond)
	}
	return fmt.Errorf("etcd at %s was not healthy within 15s:\n%s", s.Endpoint, s.stderr.String())
}

// Stop stops the server (SIGTERM, then SIGKILL after 5 seconds) and waits
// for it to exit. Its data directory is kept for Restart.
func (s *Server) Stop() {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
	}
}

// Restart starts the stopped server again, on the same ports and data
// directory, and waits until it is healthy.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	if err := s.start(); err != nil {
		s.t.Fatalf("etcdtest: restarting: %v", err)
	}
}

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
