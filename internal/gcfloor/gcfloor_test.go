package gcfloor

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
)

func TestPercentFor(t *testing.T) {
	for _, c := range []struct {
		floor, live uint64
		want        int
	}{
		{32 << 20, 0, maxPercent},
		{32 << 20, 1 << 10, maxPercent},
		{32 << 20, 4 << 20, 800},
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
