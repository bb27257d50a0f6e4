package nginxtest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/edgectl/edgectl/internal/tooltest"
)

// Binary returns nginx's path: on PATH, or where Debian installs it
// (/usr/sbin is not on an ordinary user's PATH). It skips t, or fails it
// when CI is "true", when there is none.
func Binary(t testing.TB) string {
	t.Helper()
	return tooltest.Path(t, "nginx", "nginx", "/usr/sbin/nginx", "/usr/local/sbin/nginx")
}

// Start runs nginx with dir as its prefix directory (a new temporary
// directory when dir is empty) and returns the loopback address it
// listens on. http returns the directives of the http block, given that
// address: the servers (each with "listen addr"), their locations and
// any http-level setting. Start writes the rest of nginx.conf to dir: one
// worker in the foreground, its pid file, error log (level info) and
// temporary paths in dir, no access log.
//
// nginx cannot listen on port 0 and say which port it got, so Start picks
// a port that was free a moment ago and tries again, up to three times,
// when nginx cannot listen on it. nginx is killed when the test ends; its
// output and error log are logged when the test failed.
func Start(t testing.TB, dir string, http func(addr string) string) string {
	t.Helper()
	bin := Binary(t)
	if dir == "" {
		dir = t.TempDir()
	}
	confPath := filepath.Join(dir, "nginx.conf")
	errorLog := filepath.Join(dir, "nginx-error.log")
	var lastErr error
	for range 3 {
		addr, err := freeAddr()
		if err != nil {
			t.Fatal(err)
		}
		conf := fmt.Sprintf(`daemon off;
master_process off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[2]s info;
events { worker_connections 128; }
http {
access_log off;
client_body_temp_path %[1]s/tmp-body;
proxy_temp_path %[1]s/tmp-proxy;
fastcgi_temp_path %[1]s/tmp-fastcgi;
uwsgi_temp_path %[1]s/tmp-uwsgi;
scgi_temp_path %[1]s/tmp-scgi;
%[3]s
}
`, dir, errorLog, http(addr))
		if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, "-p", dir, "-c", confPath, "-e", errorLog)
		// Read only once Wait has returned: exec's copying is then done.
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatalf("nginx: %v", err)
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		stop := func() {
			cmd.Process.Kill()
			<-exited
		}
		if err := waitListening(addr, exited); err != nil {
			stop()
			log, _ := os.ReadFile(errorLog)
			lastErr = fmt.Errorf("nginx did not start on %s: %v\n%s%s", addr, err, out.String(), log)
			continue
		}
		t.Cleanup(func() {
			stop()
			if t.Failed() {
				log, _ := os.ReadFile(errorLog)
				t.Logf("nginx output:\n%s\nnginx error log (%s):\n%s", out.String(), errorLog, log)
			}
		})
		return addr
	}
	t.Fatal(lastErr)
	return ""
}

// freeAddr returns a loopback address whose port was free a moment ago.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// waitListening waits until addr accepts a connection, nginx exits, or
// ten seconds pass.
func waitListening(addr string, exited <-chan struct{}) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-exited:
			return errors.New("it exited")
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out: %w", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
