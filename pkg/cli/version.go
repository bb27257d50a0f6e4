package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// Set at build time by the Makefile:
//
//	-ldflags "-X github.com/edgectl/edgectl/pkg/cli.version=v1.2.3 -X github.com/edgectl/edgectl/pkg/cli.commit=abc123"
//
// When unset, the values come from the Go build information, so that
// `go install github.com/edgectl/edgectl/cmd/edgectl@v1.2.3` reports v1.2.3.
var (
	version = ""
	commit  = ""
)

// BuildInfo describes the running binary.
type BuildInfo struct {
	// Version is the release tag (v1.2.3), a Go pseudo-version, or "devel".
	Version string `json:"version"`
	// Commit is the VCS revision the binary was built from, when known.
	Commit string `json:"commit,omitempty"`
	// CommitTime is the time of that revision (RFC 3339), when known.
	CommitTime string `json:"commitTime,omitempty"`
	// Modified is true when the working tree had uncommitted changes.
	Modified bool `json:"modified,omitempty"`
	// GoVersion is the Go toolchain that built the binary.
	GoVersion string `json:"goVersion"`
	// Platform is GOOS/GOARCH.
	Platform string `json:"platform"`
}

// readBuildInfo is debug.ReadBuildInfo, replaceable in tests.
var readBuildInfo = debug.ReadBuildInfo

// GetBuildInfo returns the binary's build information: the linker-set
// version and commit win, then the module version and VCS settings recorded
// by the Go toolchain.
func GetBuildInfo() BuildInfo {
	b := BuildInfo{GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi, ok := readBuildInfo(); ok {
		if bi.GoVersion != "" {
			b.GoVersion = bi.GoVersion
		}
		if v := bi.Main.Version; v != "" && v != "(devel)" {
			b.Version = v
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				b.Commit = s.Value
			case "vcs.time":
				b.CommitTime = s.Value
			case "vcs.modified":
				b.Modified = s.Value == "true"
			}
		}
	}
	if version != "" {
		b.Version = version
	}
	if commit != "" {
		b.Commit = commit
	}
	if b.Version == "" {
		b.Version = "devel"
	}
	return b
}

// Version returns the build's version: the linker-set one, else the module
// version, else "devel".
func Version() string { return GetBuildInfo().Version }

// String renders b as the lines `edgectl version` and `edgectl --version` print.
func (b BuildInfo) String() string {
	s := "edgectl " + b.Version + "\n"
	c := b.Commit
	if c == "" {
		c = "unknown"
	}
	if b.CommitTime != "" {
		c += " (" + b.CommitTime + ")"
	}
	if b.Modified {
		c += " with uncommitted changes"
	}
	s += "commit: " + c + "\n"
	s += "go: " + b.GoVersion + " " + b.Platform + "\n"
	return s
}

// VersionOptions are the inputs of edgectl version.
type VersionOptions struct {
	IO *IO
	// Output is "text" or "json".
	Output string
	// NoColor is accepted for symmetry with the other verbs (the output has no color).
	NoColor bool
}

func newVersionCmd(streams *IO) *cobra.Command {
	opts := &VersionOptions{IO: streams}
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit and Go version of this binary",
		Long: `Version prints the release of this binary, the commit it was built from and
the Go toolchain that built it, read from the build information that the Go
toolchain records (so "go install ...@v1.2.3" reports v1.2.3). "edgectl
--version" prints the same.`,
		Example: `  edgectl version
  edgectl version -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runVersion(cmd.Context(), opts)
		},
	}
	addReadFlags(cmd, &opts.Output, &opts.NoColor)
	return cmd
}

func runVersion(_ context.Context, opts *VersionOptions) error {
	return writeVersion(opts.IO.Out, opts.Output, GetBuildInfo())
}

func writeVersion(w io.Writer, output string, b BuildInfo) error {
	switch output {
	case "text":
		_, err := io.WriteString(w, b.String())
		return err
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(b)
	default:
		return fmt.Errorf("unknown output format %q: use text or json", output)
	}
}
