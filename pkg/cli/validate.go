package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/edgectl/edgectl/pkg/diag"
	"github.com/edgectl/edgectl/pkg/manifest"
	"github.com/edgectl/edgectl/pkg/validate"
)

// ValidateOptions are the inputs of edgectl validate.
type ValidateOptions struct {
	IO *IO
	// Files are manifest files, directories or "-" for stdin.
	Files []string
	// Output is "text" or "json".
	Output string
	// Strict turns warnings into errors.
	Strict bool
	// NoColor is accepted for symmetry with the other verbs; validate
	// prints no colors.
	NoColor bool
	// Now overrides the clock for certificate expiry (tests).
	Now time.Time
}

func newValidateCmd(streams *IO) *cobra.Command {
	opts := &ValidateOptions{IO: streams}
	cmd := &cobra.Command{
		Use:   "validate -f PATH...",
		Short: "Check manifests and report every problem at once",
		Long: `Validate checks manifests against the schema of their kind and for meaning:
references, unique names and hostnames, PEM material, keys, expiry, regular
expressions, CIDRs, variables and behaviors. Every problem is printed once as
file:line:col: severity: field.path: message.

Exit status: 0 when valid (warnings allowed), 1 on any error, or on any
warning with --strict.`,
		Example: `  edgectl validate -f examples/open-banking
  cat domain.yaml | edgectl validate -f -
  edgectl validate -f manifests/ -o json --strict`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runValidate(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringArrayVarP(&opts.Files, "filename", "f", nil, "manifest file, directory (recursive) or - for stdin; repeatable")
	addReadFlags(cmd, &opts.Output, &opts.NoColor)
	cmd.Flags().BoolVar(&opts.Strict, "strict", false, "treat warnings as errors")
	_ = cmd.MarkFlagRequired("filename")
	_ = cmd.MarkFlagFilename("filename", "yaml", "yml")
	return cmd
}

// loadAndValidate is the front half shared by every verb that reads manifests.
func loadAndValidate(streams *IO, files []string, now time.Time) (*validate.Result, diag.List) {
	docs, diags := manifest.Load(files, streams.In)
	res := validate.Validate(docs, validate.Options{Now: now})
	diags = append(diags, res.Diags...)
	return res, diags
}

func runValidate(_ context.Context, opts *ValidateOptions) error {
	if opts.Output != "text" && opts.Output != "json" {
		return fmt.Errorf("unknown output format %q: use text or json", opts.Output)
	}
	res, diags := loadAndValidate(opts.IO, opts.Files, opts.Now)
	wd, _ := os.Getwd()
	diags = diags.Normalized(wd, opts.Strict)
	if opts.Output == "json" {
		enc := json.NewEncoder(opts.IO.Out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(diags.Report()); err != nil {
			return err
		}
	} else {
		diags.WriteText(opts.IO.ErrOut)
		n := 0
		for _, byName := range res.Resources {
			n += len(byName)
		}
		if diags.HasErrors() {
			fmt.Fprintf(opts.IO.ErrOut, "invalid: %s\n", counts(diags))
		} else {
			fmt.Fprintf(opts.IO.Out, "valid: %d resources, %d test suites (%s)\n", n, len(res.Suites), counts(diags))
		}
	}
	if diags.HasErrors() {
		return errSilent(ExitError)
	}
	return nil
}

func counts(d diag.List) string {
	return fmt.Sprintf("%s, %s", plural(d.Count(diag.Error), "error"), plural(d.Count(diag.Warning), "warning"))
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}
