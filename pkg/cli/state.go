package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/edgectl/edgectl/pkg/plan"
	"github.com/edgectl/edgectl/pkg/state"
)

// StateShowOptions are the inputs of edgectl state show.
type StateShowOptions struct {
	IO *IO
	// StateFlags choose the state store: --state and the etcd TLS flags.
	StateFlags
	// Serial shows that snapshot of the history instead of the current one
	// (--serial); 0 for the current one.
	Serial int64
	// Output is "text" or "json".
	Output string
	// NoColor is accepted for symmetry with the other verbs; state show
	// prints no colors.
	NoColor bool
}

func newStateCmd(streams *IO) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "state",
		Short: "Inspect the deployed state, its history, and roll back",
		Long: `The state store holds what is deployed (one snapshot) and its history: the
last snapshots written (20 by default), each with its serial, when and by
whom it was applied, and what it changed.

  edgectl state show               what is deployed
  edgectl state history            the kept snapshots, newest first
  edgectl state show --serial N    one of them
  edgectl state rollback N         apply snapshot N again, as a new serial`,
	}
	cmd.AddCommand(newStateShowCmd(streams))
	cmd.AddCommand(newStateHistoryCmd(streams))
	cmd.AddCommand(newStateRollbackCmd(streams))
	return cmd
}

func newStateShowCmd(streams *IO) *cobra.Command {
	opts := &StateShowOptions{IO: streams}
	cmd := &cobra.Command{
		Use:   "show",
		Short: "Print what is deployed: serial, lineage, time of the last apply and resources",
		Long: `Show prints the deployed state: its serial, lineage, when and by whom it was
applied, what that apply changed, and one line per resource. --serial N shows
snapshot N of the history instead (see edgectl state history). With -o json
it prints the whole snapshot (null when nothing has been applied yet).

A state store named with --state or $` + state.EnvVar + ` must exist: a file path
that does not exist is an error, as a misspelt path would otherwise look like
an empty state.`,
		Example: `  edgectl state show
  edgectl state show --serial 12
  edgectl state show --state /var/lib/edgectl/state.json -o json
  edgectl state show --state etcd://10.0.0.5:2379/edgectl --etcd-cacert ca.pem`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runStateShow(cmd.Context(), opts)
		},
	}
	cmd.Flags().Int64Var(&opts.Serial, "serial", 0, "show snapshot `N` of the history instead of the current one")
	addReadFlags(cmd, &opts.Output, &opts.NoColor)
	addStateFlags(cmd, &opts.StateFlags)
	return cmd
}

// addReadFlags registers -o text|json and --no-color.
func addReadFlags(cmd *cobra.Command, output *string, noColor *bool) {
	cmd.Flags().StringVarP(output, "output", "o", "text", "output format: text or json")
	cmd.Flags().BoolVar(noColor, "no-color", false, "never color the text output")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"text", "json"}, cobra.ShellCompDirectiveNoFileComp))
}

// openReadStore opens the state store for a verb that inspects it. A file
// store named explicitly (--state or EDGECTL_STATE) must exist.
func openReadStore(streams *IO, flags StateFlags, historyLimit int) (state.Store, error) {
	store, err := openStateStoreWith(streams, flags, historyLimit)
	if err != nil {
		return nil, err
	}
	if fstore, ok := store.(*state.FileStore); ok {
		how := ""
		switch {
		case flags.State != "":
			how = "--state"
		case streams.getenv(state.EnvVar) != "":
			how = "$" + state.EnvVar
		}
		if _, err := os.Stat(fstore.Path()); how != "" && errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("state file %s (%s) does not exist: check the path; nothing was ever applied there", fstore.Path(), how)
		}
	}
	return store, nil
}

// history returns the kept snapshots of store, newest first.
func history(ctx context.Context, store state.Store) ([]*state.Snapshot, error) {
	h, ok := store.(state.Historian)
	if !ok {
		return nil, fmt.Errorf("state store %s keeps no history", store)
	}
	return h.History(ctx)
}

func runStateShow(ctx context.Context, opts *StateShowOptions) error {
	if opts.Output != "text" && opts.Output != "json" {
		return fmt.Errorf("unknown output format %q: use text or json", opts.Output)
	}
	store, err := openReadStore(opts.IO, opts.StateFlags, 0)
	if err != nil {
		return err
	}
	defer closeStore(store)
	var s *state.Snapshot
	if opts.Serial != 0 {
		h, err := history(ctx, store)
		if err != nil {
			return err
		}
		if s, err = state.FindSerial(h, opts.Serial, store); err != nil {
			return err
		}
	} else if s, err = store.Read(ctx); err != nil {
		return err
	}
	if opts.Output == "json" {
		return writeJSON(opts.IO.Out, s)
	}
	if s == nil {
		fmt.Fprintf(opts.IO.Out, "The state %s is empty: nothing has been applied yet.\n", store)
		return nil
	}
	w := opts.IO.Out
	fmt.Fprintf(w, "serial:    %d\n", s.Serial)
	fmt.Fprintf(w, "lineage:   %s\n", s.Lineage)
	fmt.Fprintf(w, "appliedAt: %s\n", s.AppliedAt.UTC().Format(time.RFC3339))
	if s.AppliedBy != "" {
		fmt.Fprintf(w, "appliedBy: %s\n", s.AppliedBy)
	}
	if c := s.Changes; c != nil {
		fmt.Fprintf(w, "changes:   %d created, %d updated, %d deleted\n", c.Create, c.Update, c.Delete)
	}
	if s.RollbackOf != 0 {
		fmt.Fprintf(w, "rollback:  restores serial %d\n", s.RollbackOf)
	}
	fmt.Fprintf(w, "resources: %d\n", len(s.Resources))
	for i := range s.Resources {
		fmt.Fprintf(w, "  %s\n", s.Resources[i].ID())
	}
	return nil
}

// StateHistoryOptions are the inputs of edgectl state history.
type StateHistoryOptions struct {
	IO *IO
	// StateFlags choose the state store: --state and the etcd TLS flags.
	StateFlags
	// Output is "text" or "json".
	Output string
	// NoColor is accepted for symmetry with the other verbs.
	NoColor bool
}

func newStateHistoryCmd(streams *IO) *cobra.Command {
	opts := &StateHistoryOptions{IO: streams}
	cmd := &cobra.Command{
		Use:   "history",
		Short: "List the kept snapshots: serial, applied at, applied by, changes",
		Long: `History lists the snapshots the state store keeps, newest (the deployed one)
first: serial, when and by whom each was applied (user@host, or
$` + AppliedByEnv + ` of the applier), how many resources it created, updated and
deleted, and the serial a rollback restored. The store keeps the last 20 by
default (apply --history-limit): the file store in PATH.history/ beside the
state file, the etcd store under PREFIX/history/, each written atomically
with the state.`,
		Example: `  edgectl state history
  edgectl state history -o json --state etcd://10.0.0.5:2379/edgectl`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runStateHistory(cmd.Context(), opts)
		},
	}
	addReadFlags(cmd, &opts.Output, &opts.NoColor)
	addStateFlags(cmd, &opts.StateFlags)
	return cmd
}

// historyEntry is one snapshot in state history -o json.
type historyEntry struct {
	Serial     int64               `json:"serial"`
	AppliedAt  time.Time           `json:"appliedAt"`
	AppliedBy  string              `json:"appliedBy"`
	Changes    *state.ChangeCounts `json:"changes"`
	Resources  int                 `json:"resources"`
	RollbackOf int64               `json:"rollbackOf,omitempty"`
	Current    bool                `json:"current"`
}

// historyReport is the output of state history -o json.
type historyReport struct {
	Store     string         `json:"store"`
	Lineage   string         `json:"lineage"`
	Serial    int64          `json:"serial"`
	Snapshots []historyEntry `json:"snapshots"`
}

func runStateHistory(ctx context.Context, opts *StateHistoryOptions) error {
	if opts.Output != "text" && opts.Output != "json" {
		return fmt.Errorf("unknown output format %q: use text or json", opts.Output)
	}
	store, err := openReadStore(opts.IO, opts.StateFlags, 0)
	if err != nil {
		return err
	}
	defer closeStore(store)
	h, err := history(ctx, store)
	if err != nil {
		return err
	}
	rep := historyReport{Store: store.String(), Snapshots: []historyEntry{}}
	for i, s := range h {
		if i == 0 {
			rep.Lineage, rep.Serial = s.Lineage, s.Serial
		}
		rep.Snapshots = append(rep.Snapshots, historyEntry{
			Serial: s.Serial, AppliedAt: s.AppliedAt.UTC(), AppliedBy: s.AppliedBy, Changes: s.Changes,
			Resources: len(s.Resources), RollbackOf: s.RollbackOf, Current: i == 0,
		})
	}
	if opts.Output == "json" {
		return writeJSON(opts.IO.Out, rep)
	}
	if len(h) == 0 {
		fmt.Fprintf(opts.IO.Out, "The state %s is empty: nothing has been applied yet.\n", store)
		return nil
	}
	fmt.Fprintf(opts.IO.Out, "State %s, lineage %s: %s kept, newest first.\n\n", store, rep.Lineage, plural(len(h), "snapshot"))
	tw := tabwriter.NewWriter(opts.IO.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SERIAL\tAPPLIED AT\tAPPLIED BY\tCREATED\tUPDATED\tDELETED\tRESOURCES\tNOTE")
	for _, e := range rep.Snapshots {
		by, cr, up, del := or(e.AppliedBy, "-"), "-", "-", "-"
		if c := e.Changes; c != nil {
			cr, up, del = strconv.Itoa(c.Create), strconv.Itoa(c.Update), strconv.Itoa(c.Delete)
		}
		note := ""
		if e.RollbackOf != 0 {
			note = fmt.Sprintf("rollback to %d", e.RollbackOf)
		}
		if e.Current {
			note = join(note, "deployed")
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", e.Serial, e.AppliedAt.Format(time.RFC3339), by, cr, up, del, e.Resources, note)
	}
	return tw.Flush()
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func join(a, b string) string {
	if a == "" {
		return b
	}
	return a + ", " + b
}

// StateRollbackOptions are the inputs of edgectl state rollback.
type StateRollbackOptions struct {
	IO *IO
	// Serial is the kept snapshot to restore.
	Serial int64
	// StateFlags choose the state store: --state and the etcd TLS flags.
	StateFlags
	// Output is "text" or "json".
	Output string
	// NoColor turns colors off on a terminal.
	NoColor bool
	// AllowDestroy restores a snapshot that has no Domain while the
	// deployed state has some.
	AllowDestroy bool
	// HistoryLimit is how many snapshots the store's history keeps.
	HistoryLimit int
	// Now overrides the clock that stamps the snapshot (tests).
	Now time.Time
}

func newStateRollbackCmd(streams *IO) *cobra.Command {
	opts := &StateRollbackOptions{IO: streams}
	cmd := &cobra.Command{
		Use:   "rollback SERIAL",
		Short: "Apply a kept snapshot again, as a new serial",
		Long: `Rollback plans the kept snapshot SERIAL (see edgectl state history) against
the deployed one, prints the plan, and applies it as a new serial: history
only grows, and a rollback can itself be rolled back. It holds the store's
lock and writes only if the state is still the one it planned against, like
apply. The destroy guard applies: restoring a snapshot without a Domain
needs --allow-destroy.

Private-key references are restored as they were stored: a relative
privateKeyFile resolves against the --key-dir of edgectl serve.`,
		Example: `  edgectl state history
  edgectl state rollback 41`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := strconv.ParseInt(args[0], 10, 64)
			if err != nil || n < 1 {
				return fmt.Errorf("rollback needs the serial of a kept snapshot, such as 12, not %q (see edgectl state history)", args[0])
			}
			opts.Serial = n
			return runStateRollback(cmd.Context(), opts)
		},
	}
	addWriteFlags(cmd, &opts.Output, &opts.NoColor, &opts.AllowDestroy, &opts.HistoryLimit)
	addStateFlags(cmd, &opts.StateFlags)
	return cmd
}

func runStateRollback(ctx context.Context, opts *StateRollbackOptions) (err error) {
	if opts.Output != "text" && opts.Output != "json" {
		return fmt.Errorf("unknown output format %q: use text or json", opts.Output)
	}
	if err := checkHistoryLimit(opts.HistoryLimit); err != nil {
		return err
	}
	store, err := openReadStore(opts.IO, opts.StateFlags, opts.HistoryLimit)
	if err != nil {
		return err
	}
	defer closeStore(store)
	if _, ok := store.(state.Historian); !ok {
		return fmt.Errorf("state store %s keeps no history", store)
	}
	unlock, err := store.Lock(ctx, "edgectl state rollback")
	if err != nil {
		return err
	}
	defer func() {
		if uerr := unlock(); uerr != nil && err == nil {
			err = uerr
		}
	}()
	h, err := history(ctx, store)
	if err != nil {
		return err
	}
	target, err := state.FindSerial(h, opts.Serial, store)
	if err != nil {
		return err
	}
	cur := h[0]
	if target == cur {
		return fmt.Errorf("serial %d is the deployed state: there is nothing to roll back (see edgectl state history)", opts.Serial)
	}
	p, err := plan.New(cur, target.Resources)
	if err != nil {
		return err
	}
	if opts.Output == "text" {
		fmt.Fprintf(opts.IO.Out, "Rolling back to serial %d (applied %s by %s) from serial %d:\n\n",
			target.Serial, target.AppliedAt.UTC().Format(time.RFC3339), or(target.AppliedBy, "an unrecorded user"), cur.Serial)
	}
	return commitPlan(ctx, opts.IO, store, cur, p, commitOptions{
		verb: "Rollback", output: opts.Output, noColor: opts.NoColor, allowDestroy: opts.AllowDestroy, now: opts.Now, rollbackOf: target.Serial,
	})
}
