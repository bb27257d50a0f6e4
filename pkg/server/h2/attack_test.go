package h2_test

// Adversarial tests: each attacks the server as an outside client would,
// with raw frames (x/net/http2's Framer over TLS on 127.0.0.1) or an
// ordinary HTTP/2 client, and fails when the defence it names is missing.

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/edgectl/edgectl/pkg/server/h2"
)

// heapInUse is the live heap after a collection.
func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// TestAttackBodyBufferBounded: a client uploading a large body as fast
// as the window lets it, to a handler that reads in small pieces a
// little slower, never lets the handler drain the stream's buffer. The
// buffer must stay bounded by the window (1 MiB), not grow with what was
// already read: without the compaction of consumed bytes, a 48 MiB upload
// held the whole 48 MiB (and more in append's copies).
func TestAttackBodyBufferBounded(t *testing.T) {
	const size = 48 << 20
	var peak atomic.Uint64
	base := heapInUse()
	addr := serve(t, &h2.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		buf := make([]byte, 32<<10)
		var n int64
		next := int64(4 << 20)
		for {
			m, err := r.Body.Read(buf)
			n += int64(m)
			if n >= next {
				next += 4 << 20
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				if ms.HeapInuse > peak.Load() {
					peak.Store(ms.HeapInuse)
				}
			}
			if err != nil {
				break
			}
			time.Sleep(100 * time.Microsecond)
		}
		fmt.Fprint(w, n)
	})})
	body := io.LimitReader(zeroReader{}, size)
	res, err := client(t, addr).Post("https://"+addr+"/up", "application/octet-stream", body)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if string(got) != fmt.Sprint(size) {
		t.Fatalf("the handler read %s bytes, want %d", got, size)
	}
	t.Logf("heap in use: %d KiB before, %d KiB at most during the upload", base>>10, peak.Load()>>10)
	if p := peak.Load(); p > base+16<<20 {
		t.Fatalf("the heap grew from %d MiB to %d MiB while a %d MiB body was read through a 1 MiB window", base>>20, p>>20, size>>20)
	}
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// TestAttackPaddedEmptyDataFlood: DATA frames that carry no data but
// padding are empty frames as much as unpadded ones (CVE-2019-9518, the
// "empty frames flood"): they serve no request and cost the server a
// frame's work each. They must count toward the flood bound as empty DATA
// does, whatever their padding (which is still flow-controlled).
func TestAttackPaddedEmptyDataFlood(t *testing.T) {
	t.Parallel()
	srv, n := counted(&h2.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.Copy(io.Discard, r.Body) })})
	addr := serve(t, srv)
	for _, pad := range []int{0, 1, 200} {
		t.Run(fmt.Sprintf("pad %d", pad), func(t *testing.T) {
			c := dialRaw(t, addr)
			c.headers(1, false, ":method", "POST", ":scheme", "https", ":authority", "h2.test", ":path", "/")
			padding := make([]byte, pad)
			go func() {
				for i := 0; i < 20000; i++ {
					if c.fr.WriteDataPadded(1, false, nil, padding) != nil {
						return
					}
				}
			}()
			evs := c.read(10*time.Second, func(ev event) bool { return isEnd(ev) || ev.kind == "rst" })
			if ev := last(evs); ev.kind != "goaway" || ev.code != http2.ErrCodeEnhanceYourCalm {
				t.Fatalf("20,000 DATA frames with %d bytes of padding and no data: %+v", pad, ev)
			}
		})
	}
	if got := n.get("conn_ENHANCE_YOUR_CALM_flood"); got != 3 {
		t.Fatalf("floods counted %d times, want 3", got)
	}
}

var (
	_ = bytes.Clone
	_ = strings.Contains
	_ = sync.Mutex{}
	_ = tls.VersionTLS13
)
