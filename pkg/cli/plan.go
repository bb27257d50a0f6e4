package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/edgectl/edgectl/pkg/diag"
	"github.com/edgectl/edgectl/pkg/plan"
	"github.com/edgectl/edgectl/pkg/state"
)

// PlanOptions are the inputs of edgectl plan.
type PlanOptions struct {
	IO *IO
	// Files are manifest files, directories or "-" for stdin.
	Files []string
	// StateFlags choose the state store: --state and the etcd TLS flags.
	StateFlags
	// Output is "text", "json" or "markdown".
	Output string
	// Out is where to save the plan for edgectl apply FILE (--out).
	Out string
	// DetailedExitCode makes the exit status 2 when there are changes.
	DetailedExitCode bool
	// NoColor turns colors off on a terminal.
	NoColor bool
}

func newPlanCmd(streams *IO) *cobra.Command {
	opts := &PlanOptions{IO: streams}
	cmd := &cobra.Command{
		Use:   "plan -f PATH...",
		Short: "Show what apply would change in the deployed state",
		Long: `Plan validates the manifests, compares them with the deployed state field by
field, and prints what apply would create (+), update (~) and delete (-).
Resources absent from the manifests are deleted: the manifests are the whole
truth. Certificate and CA bundles are summarized, and sensitive values are
masked in every output format.

The state store is --state PATH, else $EDGECTL_STATE, else .edgectl/state.json;
--state etcd://HOST:PORT/PREFIX reads it from etcd.
--out FILE saves the plan; "edgectl apply FILE" applies exactly it, and refuses
if the state changed meanwhile.

A plan that deletes every deployed Domain (such as one from an empty input)
carries a warning in every format; apply refuses it unless --allow-destroy.

With invalid manifests the diagnostics go to stderr as validate prints them,
and every format still carries them on stdout: -o json prints the report of
"validate -o json", -o markdown a list of the errors with file:line for the
pull-request comment.

Exit status: 0 on success, 1 on any error (such as invalid manifests); with
--detailed-exitcode, 0 when there are no changes and 2 when there are.`,
		Example: `  edgectl plan -f manifests/
  edgectl plan -f manifests/ --out plan.json
  edgectl plan -f manifests/ -o markdown --detailed-exitcode > plan.md`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runPlan(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringArrayVarP(&opts.Files, "filename", "f", nil, "manifest file, directory (recursive) or - for stdin; repeatable")
	cmd.Flags().StringVarP(&opts.Output, "output", "o", "text", "output format: text, json or markdown")
	cmd.Flags().StringVar(&opts.Out, "out", "", "save the plan to `FILE` for edgectl apply FILE")
	cmd.Flags().BoolVar(&opts.DetailedExitCode, "detailed-exitcode", false, "exit 2 when there are changes, 0 when there are none")
	cmd.Flags().BoolVar(&opts.NoColor, "no-color", false, "never color the text output")
	addStateFlags(cmd, &opts.StateFlags)
	_ = cmd.MarkFlagRequired("filename")
	_ = cmd.MarkFlagFilename("filename", "yaml", "yml")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"text", "json", "markdown"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// StateFlags are the flags that choose and reach the state store, shared by
// every verb that reads or writes it.
type StateFlags struct {
	// State is the state store location (--state): a file path or
	// etcd://HOST:PORT[,HOST:PORT...]/PREFIX; empty means EDGECTL_STATE, then the default.
	State string
	// EtcdCACert, EtcdCert and EtcdKey are the TLS files for an etcd store
	// (--etcd-cacert, --etcd-cert, --etcd-key); they win over the
	// location's cacert, cert and key query parameters.
	EtcdCACert, EtcdCert, EtcdKey string
}

// addStateFlags registers --state and the etcd TLS flags on cmd.
func addStateFlags(cmd *cobra.Command, target *StateFlags) {
	cmd.Flags().StringVar(&target.State, "state", "", "state store: a file `PATH` or etcd://HOST:PORT[,HOST:PORT...]/PREFIX (default $"+state.EnvVar+", else "+state.DefaultPath+")")
	cmd.Flags().StringVar(&target.EtcdCACert, "etcd-cacert", "", "PEM `FILE` of the CAs that verify etcd's certificate (etcd:// state)")
	cmd.Flags().StringVar(&target.EtcdCert, "etcd-cert", "", "PEM `FILE` of the client certificate presented to etcd (etcd:// state)")
	cmd.Flags().StringVar(&target.EtcdKey, "etcd-key", "", "PEM `FILE` of the private key of --etcd-cert (etcd:// state)")
	_ = cmd.MarkFlagFilename("state", "json")
	for _, f := range []string{"etcd-cacert", "etcd-cert", "etcd-key"} {
		_ = cmd.MarkFlagFilename(f, "pem", "crt", "key")
	}
}

func runPlan(ctx context.Context, opts *PlanOptions) error {
	switch opts.Output {
	case "text", "json", "markdown":
	default:
		return fmt.Errorf("unknown output format %q: use text, json or markdown", opts.Output)
	}
	desired, err := desiredResources(opts.IO, opts.Files, opts.Output, "plan")
	if err != nil {
		return err
	}
	store, err := openStateStore(opts.IO, opts.StateFlags)
	if err != nil {
		return err
	}
	defer closeStore(store)
	prior, err := store.Read(ctx)
	if err != nil {
		return err
	}
	p, err := plan.New(prior, desired)
	if err != nil {
		return err
	}
	if opts.Out != "" {
		data, err := p.Marshal()
		if err != nil {
			return err
		}
		if err := state.WriteFileAtomic(opts.Out, data, 0o600); err != nil {
			return fmt.Errorf("saving the plan: %w", err)
		}
	}
	switch opts.Output {
	case "json":
		err = plan.WriteJSON(opts.IO.Out, p)
	case "markdown":
		err = plan.WriteMarkdown(opts.IO.Out, p, plan.MarkdownOptions{})
	default:
		err = plan.WriteText(opts.IO.Out, p, plan.TextOptions{Color: useColor(opts.IO, opts.NoColor)})
	}
	if err != nil {
		return err
	}
	if opts.Out != "" {
		fmt.Fprintf(opts.IO.ErrOut, "Saved the plan to %s. Apply exactly it with: edgectl apply %s\n", opts.Out, opts.Out)
	}
	if opts.DetailedExitCode && p.HasChanges() {
		return errSilent(ExitChanges)
	}
	return nil
}

// desiredResources loads and validates the manifests and returns the
// normalized resources to store. Diagnostics are printed to ErrOut as
// validate prints them; with invalid manifests the verb stops with exit 1,
// and its output format still carries them on stdout: -o json the report
// of validate -o json, -o markdown a list for a pull-request comment.
func desiredResources(streams *IO, files []string, output, verb string) ([]state.Resource, error) {
	res, diags := loadAndValidate(streams, files, time.Time{})
	wd, _ := os.Getwd()
	diags = diags.Normalized(wd, false)
	diags.WriteText(streams.ErrOut)
	if diags.HasErrors() {
		outcome := "Nothing was planned or changed."
		switch output {
		case "json":
			if err := writeJSON(streams.Out, diags.Report()); err != nil {
				return nil, err
			}
		case "markdown":
			if err := diags.WriteMarkdown(streams.Out, diag.MarkdownOptions{Title: "edgectl " + verb, Outcome: outcome}); err != nil {
				return nil, err
			}
		}
		fmt.Fprintf(streams.ErrOut, "invalid: %s; nothing was planned or changed\n", counts(diags))
		return nil, errSilent(ExitError)
	}
	return res.StateResources(), nil
}

// writeJSON writes v as indented JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// openStateStore opens the state store chosen by --state, EDGECTL_STATE or
// the default, with the etcd TLS flags. Close it with closeStore.
func openStateStore(streams *IO, flags StateFlags) (state.Store, error) {
	return openStateStoreWith(streams, flags, 0)
}

// openStateStoreWith is openStateStore for a writer, whose store keeps
// historyLimit snapshots (the default when zero).
func openStateStoreWith(streams *IO, flags StateFlags, historyLimit int) (state.Store, error) {
	store, err := state.OpenWith(state.Location(flags.State, streams.getenv(state.EnvVar)), state.OpenOptions{
		Etcd:         state.EtcdOptions{CACert: flags.EtcdCACert, Cert: flags.EtcdCert, Key: flags.EtcdKey},
		HistoryLimit: historyLimit,
	})
	if err != nil {
		return nil, err
	}
	logf := func(format string, args ...any) { fmt.Fprintf(streams.ErrOut, format+"\n", args...) }
	switch s := store.(type) {
	case *state.FileStore:
		s.Logf = logf
	case *state.EtcdStore:
		s.Logf = logf
	}
	return store, nil
}

// closeStore releases a store's connection, if it holds one.
func closeStore(store state.Store) {
	if c, ok := store.(io.Closer); ok {
		_ = c.Close()
	}
}

// useColor reports whether w is a terminal that should get colors: not with
// --no-color, NO_COLOR set or TERM=dumb.
func useColor(streams *IO, noColor bool) bool {
	if noColor || streams.getenv("NO_COLOR") != "" || streams.getenv("TERM") == "dumb" {
		return false
	}
	return isTerminal(streams.Out)
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
