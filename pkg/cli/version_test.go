package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// withBuild replaces the build information and the linker-set values for one test.
func withBuild(t *testing.T, bi *debug.BuildInfo, ldVersion, ldCommit string) {
	t.Helper()
	oldRead, oldV, oldC := readBuildInfo, version, commit
	t.Cleanup(func() { readBuildInfo, version, commit = oldRead, oldV, oldC })
	readBuildInfo = func() (*debug.BuildInfo, bool) { return bi, bi != nil }
	version, commit = ldVersion, ldCommit
}

func TestGetBuildInfo(t *testing.T) {
	installed := &debug.BuildInfo{ // as `go install github.com/edgectl/edgectl/cmd/edgectl@v1.2.3` records it
		GoVersion: "go1.26.0",
		Main:      debug.Module{Path: "github.com/edgectl/edgectl", Version: "v1.2.3"},
	}
	source := &debug.BuildInfo{ // as `go build` in a checkout records it
		GoVersion: "go1.26.0",
		Main:      debug.Module{Path: "github.com/edgectl/edgectl", Version: "(devel)"},
		Settings: []debug.BuildSetting{
			{Key: "vcs", Value: "git"},
			{Key: "vcs.revision", Value: "0e12ae3d0e12ae3d0e12ae3d0e12ae3d0e12ae3d"},
			{Key: "vcs.time", Value: "2026-12-07T14:00:00Z"},
			{Key: "vcs.modified", Value: "true"},
		},
	}
	tests := map[string]struct {
		bi                  *debug.BuildInfo
		ldVersion, ldCommit string
		want                BuildInfo
	}{
		"go install at a tag": {bi: installed, want: BuildInfo{Version: "v1.2.3", GoVersion: "go1.26.0"}},
		"go build in a checkout": {bi: source, want: BuildInfo{Version: "devel", Commit: "0e12ae3d0e12ae3d0e12ae3d0e12ae3d0e12ae3d",
			CommitTime: "2026-12-07T14:00:00Z", Modified: true, GoVersion: "go1.26.0"}},
		"make build: ldflags win": {bi: installed, ldVersion: "v9.9.9", ldCommit: "abc", want: BuildInfo{Version: "v9.9.9", Commit: "abc", GoVersion: "go1.26.0"}},
		"no build info":           {bi: nil, want: BuildInfo{Version: "devel"}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			withBuild(t, tt.bi, tt.ldVersion, tt.ldCommit)
			got := GetBuildInfo()
			if got.Platform == "" || got.GoVersion == "" {
				t.Errorf("platform %q, go version %q: want both set", got.Platform, got.GoVersion)
			}
			got.Platform = ""
			if tt.bi == nil {
				got.GoVersion = ""
			}
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("GetBuildInfo() (-want +got):\n%s", d)
			}
			if Version() != tt.want.Version {
				t.Errorf("Version() = %q, want %q", Version(), tt.want.Version)
			}
		})
	}
}

func TestVersionAndFlagAgree(t *testing.T) {
	withBuild(t, &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "v1.2.3"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "abc123"}}}, "", "")
	run := func(args ...string) string {
		var out, errOut bytes.Buffer
		if code := Run(context.Background(), args, &IO{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}); code != 0 {
			t.Fatalf("edgectl %v: exit %d: %s", args, code, errOut.String())
		}
		return out.String()
	}
	v, flag := run("version"), run("--version")
	if v != flag {
		t.Errorf("version and --version differ:\n%s\n%s", v, flag)
	}
	for _, want := range []string{"edgectl v1.2.3\n", "commit: abc123\n", "go: go1.26.0 "} {
		if !strings.Contains(v, want) {
			t.Errorf("version output lacks %q:\n%s", want, v)
		}
	}
	var b BuildInfo
	if err := json.Unmarshal([]byte(run("version", "-o", "json")), &b); err != nil {
		t.Fatal(err)
	}
	if b.Version != "v1.2.3" || b.Commit != "abc123" || b.GoVersion != "go1.26.0" {
		t.Errorf("version -o json = %+v", b)
	}
	var out, errOut bytes.Buffer
	if code := Run(context.Background(), []string{"version", "-o", "yaml"}, &IO{Out: &out, ErrOut: &errOut}); code != 1 || !strings.Contains(errOut.String(), `unknown output format "yaml"`) {
		t.Errorf("version -o yaml: exit %d, stderr %q", code, errOut.String())
	}
}
