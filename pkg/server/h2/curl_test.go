package h2_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edgectl/edgectl/internal/tooltest"
	"github.com/edgectl/edgectl/pkg/server/h2"
)

// TestCurl: curl (nghttp2, another HTTP/2 implementation) gets its
// requests answered over HTTP/2: several multiplexed on one connection,
// an upload larger than the windows, and a large download.
func TestCurl(t *testing.T) {
	t.Parallel()
	bin := tooltest.Path(t, "curl", "curl")
	addr := serve(t, &h2.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/large" {
			w.Write(bytes.Repeat([]byte("0123456789abcdef"), 256<<10))
			return
		}
		echo(w, r)
	})})
	cert, _ := testCert()
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Leaf.Raw}), 0o600)
	body := bytes.Repeat([]byte("upload"), 500_000)
	upload := filepath.Join(dir, "upload")
	os.WriteFile(upload, body, 0o600)
	_, port, _ := net.SplitHostPort(addr)
	base := "https://h2.test:" + port
	run := func(args ...string) string {
		t.Helper()
		all := append([]string{"-sS", "--http2", "--max-time", "20", "--cacert", ca, "--resolve", "h2.test:" + port + ":127.0.0.1"}, args...)
		out, err := exec.Command(bin, all...).CombinedOutput()
		if err != nil {
			t.Fatalf("curl %s: %v\n%s", strings.Join(all, " "), err, out)
		}
		return string(out)
	}
	// Three requests in parallel, multiplexed on one connection.
	out := run("-Z", "--parallel-immediate", "-w", " %{http_version} %{http_code} %{num_connects}\n", base+"/a", base+"/b?x=1", base+"/c")
	if got := strings.Count(out, " 2 200 "); got != 3 {
		t.Fatalf("parallel requests:\n%s", out)
	}
	want := fmt.Sprintf("%d %x 2 200", len(body), sha256.Sum256(body))
	if out := run("--data-binary", "@"+upload, "-w", " %{http_version} %{http_code}", base+"/upload"); out != want {
		t.Fatalf("upload: %q, want %q", out, want)
	}
	large := filepath.Join(dir, "large")
	run("-o", large, base+"/large")
	if got, _ := os.ReadFile(large); !bytes.Equal(got, bytes.Repeat([]byte("0123456789abcdef"), 256<<10)) {
		t.Fatalf("download: %d bytes", len(got))
	}
}
