package edge

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgectl/edgectl/pkg/manifest"
	"github.com/edgectl/edgectl/pkg/state"
)

// keyFileWorld is one domain whose certificate's key is a file, compiled
// with options that count the reads of that file.
type keyFileWorld struct {
	f     *incrFixture
	path  string
	reads atomic.Int32
}

func newKeyFileWorld(t *testing.T) *keyFileWorld {
	if runtime.GOOS != "linux" {
		t.Skip("key files are stamped on Linux only")
	}
	w := &keyFileWorld{f: getIncrFixture(t), path: filepath.Join(t.TempDir(), "edge.key")}
	w.write(t, w.f.servers[0].KeyPEM())
	return w
}

func (w *keyFileWorld) write(t *testing.T, pem []byte) {
	t.Helper()
	if err := os.WriteFile(w.path, pem, 0o600); err != nil {
		t.Fatal(err)
	}
}

func (w *keyFileWorld) snapshot(serial int64) *state.Snapshot {
	res := []state.Resource{
		{Kind: manifest.KindCertificate, Name: "edge", Spec: &manifest.CertificateSpec{Certificate: string(w.f.servers[0].CertPEM()), PrivateKeyFile: w.path}},
		{Kind: manifest.KindApplication, Name: "app", Spec: &manifest.ApplicationSpec{Origin: manifest.Origin{URL: w.f.origin.URL}}},
		{Kind: manifest.KindDomain, Name: "api", Spec: &manifest.DomainSpec{Hostnames: []string{"api.test"}, Certificate: "edge", Application: "app"}},
	}
	state.SortResources(res)
	return &state.Snapshot{Serial: serial, Lineage: "keys", Resources: res}
}

func (w *keyFileWorld) options(prev *Runtime) Options {
	return Options{
		TicketSecret: w.f.secret,
		Previous:     prev,
		ReadFile: func(name string) ([]byte, error) {
			if name == w.path {
				w.reads.Add(1)
			}
			return os.ReadFile(name)
		},
		StatFile: func(name string) (os.FileInfo, error) { return os.Stat(name) },
	}
}

// compile compiles serial with prev and returns the runtime (nil on an
// error, which it returns) and how many times the key file was read.
func (w *keyFileWorld) compile(t *testing.T, serial int64, prev *Runtime) (*Runtime, int32, error) {
	t.Helper()
	w.reads.Store(0)
	rt, err := Compile(w.snapshot(serial), w.options(prev))
	return rt, w.reads.Load(), err
}

// TestKeyFileStamps: a reload reads a key file again only when it changed
// since the previous compile read it; a changed key (even of the same
// size) and a missing one are noticed as when every key was read.
func TestKeyFileStamps(t *testing.T) {
	defer func(d time.Duration) { keySettle = d }(keySettle)
	keySettle = 0 // trust any stamp: the file is older than its read
	w := newKeyFileWorld(t)
	rt, reads, err := w.compile(t, 1, nil)
	if err != nil || reads != 1 {
		t.Fatalf("first compile: %d reads, %v", reads, err)
	}
	defer func() { rt.Close() }()
	next, reads, err := w.compile(t, 2, rt)
	if err != nil || reads != 0 {
		t.Fatalf("reload of an unchanged key file: %d reads, %v; want none", reads, err)
	}
	if next.Domains()[0].tls.cert != rt.Domains()[0].tls.cert {
		t.Error("the unchanged certificate was not reused")
	}
	rt.Close()
	rt = next

	// Another key of the same size: noticed, and refused.
	other := w.f.servers[1].KeyPEM()
	if len(other) != len(w.f.servers[0].KeyPEM()) {
		t.Fatalf("the fixture's keys differ in size (%d, %d): the test wants the same", len(other), len(w.f.servers[0].KeyPEM()))
	}
	w.write(t, other)
	if _, reads, err := w.compile(t, 3, rt); err == nil || reads == 0 || !strings.Contains(err.Error(), "does not match") {
		t.Fatalf("a changed key file: %d reads, %v; want it read and refused", reads, err)
	}
	// The right key back: read again, and served.
	w.write(t, w.f.servers[0].KeyPEM())
	next, reads, err = w.compile(t, 4, rt)
	if err != nil || reads == 0 {
		t.Fatalf("the key restored: %d reads, %v", reads, err)
	}
	rt.Close()
	rt = next
	// Gone: noticed.
	os.Remove(w.path)
	if _, _, err := w.compile(t, 5, rt); err == nil || !strings.Contains(err.Error(), "cannot read private key") {
		t.Fatalf("a missing key file: %v; want it refused", err)
	}
}

// TestKeyFileYoungReadAgain: a key file changed less than keySettle before
// it was read is read again at every compile: a second change within the
// same tick of the kernel's clock could keep its stamp.
func TestKeyFileYoungReadAgain(t *testing.T) {
	defer func(d time.Duration) { keySettle = d }(keySettle)
	keySettle = time.Hour
	w := newKeyFileWorld(t)
	rt, _, err := w.compile(t, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	for serial := int64(2); serial < 4; serial++ {
		next, reads, err := w.compile(t, serial, rt)
		if err != nil || reads != 1 {
			t.Fatalf("reload %d: %d reads, %v; want 1", serial, reads, err)
		}
		next.Close()
	}
}
