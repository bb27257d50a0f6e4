package gcfloor

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strings"
	"testing"
)

func TestPercentFor(t *testing.T) {
	for _, c := range []struct {
		floor, live uint64
		want        int
	}{
		{32 << 20, 0, 800},
		{32 << 20, 1 << 10, 800},
		{32 << 20, 4 << 20, 800},
		{32 << 20, 8 << 20, 400},
		{1 << 40, 4 << 20, maxPercent},
		{32 << 20, 32 << 20, 100},
		{32 << 20, 1 << 30, 100},
	} {
		if got := percentFor(c.floor, c.live); got != c.want {
			t.Errorf("percentFor(%d, %d) = %d, want %d", c.floor, c.live, got, c.want)
		}
	}
}

// gcCycles is the number of collections so far.
func gcCycles() uint64 {
	s := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

var sink []byte

// churn allocates n bytes of short-lived garbage and reports how many
// collections ran meanwhile.
func churn(n int) uint64 {
	before := gcCycles()
	for i := 0; i < n; i += 4096 {
		sink = make([]byte, 4096)
	}
	sink = nil
	return gcCycles() - before
}

// TestFloorMeansFewerCollections: with a small live heap, allocating 256
// MiB of garbage collects at every few MiB under GOGC=100 and a handful of
// times with a 256 MiB floor; stop restores the percentage. (The floor is
// large because this loop allocates so fast that what it allocates while
// a collection marks counts as live.)
func TestFloorMeansFewerCollections(t *testing.T) {
	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	runtime.GC()
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	without := churn(256 << 20)

	runtime.GC()
	stop := Start(256 << 20)
	with := churn(256 << 20)
	stop()
	stop() // a second call does nothing
	if with*4 > without || with > 8 {
		t.Errorf("collections while allocating 256 MiB: %d with a 256 MiB floor, %d without", with, without)
	}
	if p := debug.SetGCPercent(100); p != 100 {
		t.Errorf("after stop the GC percentage is %d, want 100 restored", p)
	}
	t.Logf("collections for 256 MiB of garbage: %d without a floor, %d with 256 MiB", without, with)
}

// TestOperatorSettingsWin: with GOGC or GOMEMLIMIT set, Start leaves the
// percentage alone.
func TestOperatorSettingsWin(t *testing.T) {
	for _, env := range []string{"GOGC", "GOMEMLIMIT"} {
		t.Run(env, func(t *testing.T) {
			t.Setenv("GOGC", "")
			t.Setenv("GOMEMLIMIT", "")
			t.Setenv(env, "200")
			defer debug.SetGCPercent(debug.SetGCPercent(100))
			stop := Start(64 << 20)
			if p := debug.SetGCPercent(100); p != 100 {
				t.Errorf("with %s set, Start changed the GC percentage to %d", env, p)
			}
			stop()
		})
	}
}

// TestOverlappingStarts: the first Start's setting holds until the last
// stop.
func TestOverlappingStarts(t *testing.T) {
	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	a := Start(1 << 40)
	b := Start(1 << 40)
	a()
	if p := debug.SetGCPercent(-2); p <= 100 { // -2: read (any negative means off; restored below)
		t.Errorf("after one of two stops the percentage is %d, want the floor's", p)
	} else {
		debug.SetGCPercent(p)
	}
	b()
	if p := debug.SetGCPercent(100); p != 100 {
		t.Errorf("after both stops the percentage is %d, want 100", p)
	}
}

// TestFirstCollectionAtTheFloor: in a process that has not collected yet,
// with the floor on, allocating 256 MiB of garbage collects several
// times, the heap staying near the floor. (Before the fix, the percentage
// for an unknown live heap was 10,000%: the runtime's minimum goal scaled
// with it to 400 MB, and the first collection waited for that.) It runs
// in a child process: this one has collected already.
func TestFirstCollectionAtTheFloor(t *testing.T) {
	if os.Getenv("GCFLOOR_CHILD") == "1" {
		if n := gcCycles(); n != 0 {
			fmt.Printf("skip: %d collections before the test\n", n)
			return
		}
		stop := Start(32 << 20)
		var peak uint64
		var ms runtime.MemStats
		for i := 0; i < 64; i++ {
			churn(4 << 20)
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapAlloc)
		}
		stop()
		fmt.Printf("collections=%d peak=%d\n", gcCycles(), peak)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestFirstCollectionAtTheFloor$")
	cmd.Env = append(os.Environ(), "GCFLOOR_CHILD=1", "GOGC=", "GOMEMLIMIT=")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	var cycles, peak uint64
	if i := strings.Index(string(out), "skip: "); i >= 0 {
		t.Skipf("the child had collected before the test: %s", out[i:])
	}
	if _, err := fmt.Sscanf(string(out[strings.Index(string(out), "collections="):]), "collections=%d peak=%d", &cycles, &peak); err != nil {
		t.Fatalf("child output %q: %v", out, err)
	}
	if cycles < 4 || peak > 80<<20 {
		t.Errorf("256 MiB of garbage with a 32 MiB floor from the start: %d collections, heap peak %d MiB; want several, under 80 MiB", cycles, peak>>20)
	}
	t.Logf("%d collections, heap peak %d MiB", cycles, peak>>20)
}
