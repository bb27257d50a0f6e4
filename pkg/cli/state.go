package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"
)

// StateShowOptions are the inputs of edgectl state show.
type StateShowOptions struct {
	IO *IO
	// StateFlags choose the state store: --state and the etcd TLS flags.
	StateFlags
	// Output is "text" or "json".
	Output string
}

func newStateCmd(streams *IO) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "state",
		Short: "Inspect the deployed state",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newStateShowCmd(streams))
	return cmd
}

func newStateShowCmd(streams *IO) *cobra.Command {
	opts := &StateShowOptions{IO: streams}
	cmd := &cobra.Command{
		Use:   "show",
		Short: "Print what is deployed: serial, lineage, time of the last apply and resources",
		Long: `Show prints the deployed state: its serial, lineage, the time of the last
apply, and one line per resource. With -o json it prints the whole snapshot
(null when nothing has been applied yet).`,
		Example: `  edgectl state show
  edgectl state show --state /var/lib/edgectl/state.json -o json
  edgectl state show --state etcd://10.0.0.5:2379/edgectl --etcd-cacert ca.pem`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runStateShow(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVarP(&opts.Output, "output", "o", "text", "output format: text or json")
	addStateFlags(cmd, &opts.StateFlags)
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"text", "json"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func runStateShow(ctx context.Context, opts *StateShowOptions) error {
	if opts.Output != "text" && opts.Output != "json" {
		return fmt.Errorf("unknown output format %q: use text or json", opts.Output)
	}
	store, err := openStateStore(opts.IO, opts.StateFlags)
	if err != nil {
		return err
	}
	defer closeStore(store)
	s, err := store.Read(ctx)
	if err != nil {
		return err
	}
	if opts.Output == "json" {
		enc := json.NewEncoder(opts.IO.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(s)
	}
	if s == nil {
		fmt.Fprintf(opts.IO.Out, "The state %s is empty: nothing has been applied yet.\n", store)
		return nil
	}
	w := opts.IO.Out
	fmt.Fprintf(w, "serial:    %d\n", s.Serial)
	fmt.Fprintf(w, "lineage:   %s\n", s.Lineage)
	fmt.Fprintf(w, "appliedAt: %s\n", s.AppliedAt.UTC().Format(time.RFC3339))
	fmt.Fprintf(w, "resources: %d\n", len(s.Resources))
	for i := range s.Resources {
		fmt.Fprintf(w, "  %s\n", s.Resources[i].ID())
	}
	return nil
}
