package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestStartCPUProfile: EDGECTL_CPUPROFILE's file holds a profile once
// stopped; an empty path profiles nothing; a path that cannot be created
// is an error naming the variable.
func TestStartCPUProfile(t *testing.T) {
	stop, err := startCPUProfile("")
	if err != nil {
		t.Fatal(err)
	}
	stop()
	path := filepath.Join(t.TempDir(), "cpu.prof")
	stop, err = startCPUProfile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 1e6; i++ {
		_ = strings.Repeat("x", i%8)
	}
	stop()
	if fi, err := os.Stat(path); err != nil || fi.Size() == 0 {
		t.Fatalf("profile %s: %v (size %v)", path, err, fi)
	}
	if _, err := startCPUProfile(filepath.Join(t.TempDir(), "missing", "cpu.prof")); err == nil || !strings.Contains(err.Error(), "EDGECTL_CPUPROFILE") {
		t.Fatalf("error for an impossible path: %v", err)
	}
}
