package cli

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// VersionOptions are the inputs of edgectl version.
type VersionOptions struct {
	IO *IO
	// Output is "text" or "json".
	Output string
	// NoColor is accepted for symmetry with the other verbs.
	NoColor bool
}

// VersionInfo is what edgectl version reports.
type VersionInfo struct {
	Version   string `json:"version"`
	Commit    string `json:"commit,omitempty"`
	Modified  bool   `json:"modified,omitempty"`
	GoVersion string `json:"goVersion"`
	Platform  string `json:"platform"`
}

func newVersionCmd(streams *IO) *cobra.Command {
	opts := &VersionOptions{IO: streams}
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit and Go version of this build",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runVersion(opts)
		},
	}
	addReadFlags(cmd, &opts.Output, &opts.NoColor)
	return cmd
}

func buildInfo() VersionInfo {
	v := VersionInfo{Version: Version(), GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				v.Commit = s.Value
			case "vcs.modified":
				v.Modified = s.Value == "true"
			}
		}
	}
	return v
}

func runVersion(opts *VersionOptions) error {
	if opts.Output != "text" && opts.Output != "json" {
		return fmt.Errorf("unknown output format %q: use text or json", opts.Output)
	}
	v := buildInfo()
	if opts.Output == "json" {
		return writeJSON(opts.IO.Out, v)
	}
	commit := v.Commit
	switch {
	case commit == "":
		commit = "unknown commit"
	case v.Modified:
		commit += " (modified)"
	}
	fmt.Fprintf(opts.IO.Out, "edgectl %s\ncommit: %s\ngo:     %s %s\n", v.Version, commit, v.GoVersion, v.Platform)
	return nil
}
