package tooltest

import (
	"os/exec"
	"testing"
)

func TestPathFindsAProgram(t *testing.T) {
	want, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go is not on PATH")
	}
	if got := Path(t, "go", "golang"); got != want {
		t.Errorf("Path(go) = %q, want %q", got, want)
	}
	// A name not on PATH, found among the others.
	if got := Path(t, "edgectl-no-such-program", "none", want); got != want {
		t.Errorf("Path with a fallback = %q, want %q", got, want)
	}
}

// TestPathMissing: a missing program skips, and fails under CI=true.
func TestPathMissing(t *testing.T) {
	for _, ci := range []string{"", "true"} {
		t.Run("CI="+ci, func(t *testing.T) {
			t.Setenv("CI", ci)
			var rec recorder
			func() {
				defer func() { recover() }() // Skip and Fatal end the goroutine; the recorder panics instead
				Path(&rec, "edgectl-no-such-program", "nothing")
			}()
			if ci == "true" && !rec.failed || ci == "" && !rec.skipped {
				t.Errorf("CI=%q: failed %v, skipped %v", ci, rec.failed, rec.skipped)
			}
		})
	}
}

// recorder is a testing.TB that records Fatal and Skip and stops there.
type recorder struct {
	testing.TB
	failed, skipped bool
}

func (r *recorder) Helper()           {}
func (r *recorder) Fatal(args ...any) { r.failed = true; panic("fatal") }
func (r *recorder) Skip(args ...any)  { r.skipped = true; panic("skip") }
