package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/edgectl/edgectl/pkg/plan"
	"github.com/edgectl/edgectl/pkg/state"
)

// AppliedByEnv overrides who a snapshot records as its author (appliedBy),
// such as the person who merged, in a CI job that runs as a service user.
const AppliedByEnv = "EDGECTL_APPLIED_BY"

// ApplyOptions are the inputs of edgectl apply.
type ApplyOptions struct {
	IO *IO
	// Files are manifest files, directories or "-" for stdin (apply -f).
	Files []string
	// PlanFile is a saved plan to apply exactly (apply FILE).
	PlanFile string
	// StateFlags choose the state store: --state and the etcd TLS flags.
	StateFlags
	// Output is "text" or "json".
	Output string
	// NoColor turns colors off on a terminal.
	NoColor bool
	// AllowDestroy applies a plan that leaves no Domain while the deployed
	// state has some (--allow-destroy).
	AllowDestroy bool
	// HistoryLimit is how many snapshots the store's history keeps
	// (--history-limit; state.DefaultHistoryLimit when zero).
	HistoryLimit int
	// Now overrides the clock that stamps the snapshot (tests).
	Now time.Time
}

func newApplyCmd(streams *IO) *cobra.Command {
	opts := &ApplyOptions{IO: streams}
	cmd := &cobra.Command{
		Use:   "apply (-f PATH... | FILE)",
		Short: "Write the desired state (or a saved plan) to the state store",
		Long: `Apply writes the manifests' resources to the state store, atomically and under
the store's lock. Resources absent from the manifests are deleted.

"edgectl apply -f PATH..." validates, plans and applies in one step.
"edgectl apply FILE" applies exactly a plan saved with "edgectl plan --out FILE",
and refuses with "plan is stale" if the state moved since the plan was made.

Nothing is written when the manifests do not validate, when the plan is
stale, or when there are no changes (the serial stays the same).

A plan that leaves no Domain while the deployed state has some (such as an
empty input) would make every node refuse every handshake: apply refuses it
unless --allow-destroy is given.

Every snapshot written is kept in the store's history (the last
--history-limit, default 20) with who applied it ($` + AppliedByEnv + `, else
user@host) and what it changed: see "edgectl state history" and
"edgectl state rollback".

-o json prints one JSON object: the plan (as "plan -o json"), whether it was
applied, and the serial; with invalid manifests, the report of
"validate -o json".`,
		Example: `  edgectl apply -f manifests/
  edgectl plan -f manifests/ --out plan.json && edgectl apply plan.json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				opts.PlanFile = args[0]
			}
			return runApply(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringArrayVarP(&opts.Files, "filename", "f", nil, "manifest file, directory (recursive) or - for stdin; repeatable")
	addWriteFlags(cmd, &opts.Output, &opts.NoColor, &opts.AllowDestroy, &opts.HistoryLimit)
	addStateFlags(cmd, &opts.StateFlags)
	_ = cmd.MarkFlagFilename("filename", "yaml", "yml")
	return cmd
}

// addWriteFlags registers the flags shared by the verbs that write the
// state: apply and state rollback.
func addWriteFlags(cmd *cobra.Command, output *string, noColor, allowDestroy *bool, historyLimit *int) {
	cmd.Flags().StringVarP(output, "output", "o", "text", "output format: text or json")
	cmd.Flags().BoolVar(noColor, "no-color", false, "never color the text output")
	cmd.Flags().BoolVar(allowDestroy, "allow-destroy", false, "apply a plan that deletes every deployed Domain")
	cmd.Flags().IntVar(historyLimit, "history-limit", state.DefaultHistoryLimit, "how many snapshots the state history keeps, the new one included (0: the default)")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"text", "json"}, cobra.ShellCompDirectiveNoFileComp))
}

func runApply(ctx context.Context, opts *ApplyOptions) (err error) {
	if opts.Output != "text" && opts.Output != "json" {
		return fmt.Errorf("unknown output format %q: use text or json", opts.Output)
	}
	if err := checkHistoryLimit(opts.HistoryLimit); err != nil {
		return err
	}
	var saved *plan.Plan
	var desired []state.Resource
	switch {
	case opts.PlanFile != "" && len(opts.Files) > 0:
		return errors.New("give either a saved plan FILE or -f PATH..., not both")
	case opts.PlanFile != "":
		data, err := os.ReadFile(opts.PlanFile)
		if err != nil {
			return fmt.Errorf("reading the plan: %w", err)
		}
		if saved, err = plan.Unmarshal(data); err != nil {
			return fmt.Errorf("plan %s: %w", opts.PlanFile, err)
		}
	case len(opts.Files) > 0:
		if desired, err = desiredResources(opts.IO, opts.Files, opts.Output, "apply"); err != nil {
			return err
		}
	default:
		return errors.New("apply needs a saved plan FILE or -f PATH... (see edgectl apply --help)")
	}
	store, err := openStateStoreWith(opts.IO, opts.StateFlags, opts.HistoryLimit)
	if err != nil {
		return err
	}
	defer closeStore(store)
	unlock, err := store.Lock(ctx, "edgectl apply")
	if err != nil {
		return err
	}
	defer func() {
		if uerr := unlock(); uerr != nil && err == nil {
			err = uerr
		}
	}()
	prior, err := store.Read(ctx)
	if err != nil {
		return err
	}
	p := saved
	if saved != nil {
		if err := saved.Verify(prior); err != nil {
			return err
		}
	} else if p, err = plan.New(prior, desired); err != nil {
		return err
	}
	return commitPlan(ctx, opts.IO, store, prior, p, commitOptions{
		verb: "Apply", output: opts.Output, noColor: opts.NoColor, allowDestroy: opts.AllowDestroy, now: opts.Now,
	})
}

// commitOptions tune commitPlan.
type commitOptions struct {
	verb         string // "Apply" or "Rollback", for the closing line
	output       string
	noColor      bool
	allowDestroy bool
	now          time.Time
	rollbackOf   int64
}

// commitResult is the -o json output of apply and state rollback.
type commitResult struct {
	Plan    json.RawMessage `json:"plan"`
	Applied bool            `json:"applied"`
	// Serial is the state's serial afterwards (the new one when applied).
	Serial     int64  `json:"serial"`
	Lineage    string `json:"lineage"`
	RollbackOf int64  `json:"rollbackOf,omitempty"`
	// Refused says why a plan with changes was not applied.
	Refused string `json:"refused,omitempty"`
}

// commitPlan prints the plan p (made against prior, with the store locked)
// and writes its snapshot unless it has no changes or the destroy guard
// refuses it. The write is compare-and-swap on prior's lineage and serial.
func commitPlan(ctx context.Context, streams *IO, store state.Store, prior *state.Snapshot, p *plan.Plan, c commitOptions) error {
	refused := checkDestroy(p, c.allowDestroy)
	lineage, serial := prior.Version()
	var next *state.Snapshot
	if p.HasChanges() && refused == nil {
		now := c.now
		if now.IsZero() {
			now = time.Now()
		}
		next = p.Snapshot(now)
		next.AppliedBy = appliedBy(streams)
		next.RollbackOf = c.rollbackOf
		if c.output == "text" {
			// The plan shows before the write, so that a failed write
			// still shows what was attempted.
			if err := plan.WriteText(streams.Out, p, plan.TextOptions{Color: useColor(streams, c.noColor)}); err != nil {
				return err
			}
		}
		if err := store.Write(ctx, next, p.Lineage, p.PriorSerial); err != nil {
			return err
		}
		lineage, serial = next.Lineage, next.Serial
	} else if c.output == "text" {
		if err := plan.WriteText(streams.Out, p, plan.TextOptions{Color: useColor(streams, c.noColor)}); err != nil {
			return err
		}
	}
	if c.output == "json" {
		var b bytes.Buffer
		if err := plan.WriteJSON(&b, p); err != nil {
			return err
		}
		res := commitResult{Plan: b.Bytes(), Applied: next != nil, Serial: serial, Lineage: lineage, RollbackOf: c.rollbackOf}
		if refused != nil {
			res.Refused = refused.Error()
		}
		if err := writeJSON(streams.Out, res); err != nil {
			return err
		}
	}
	if refused != nil {
		return refused
	}
	// The closing line is a result in text, progress beside JSON.
	w := streams.Out
	if c.output == "json" {
		w = streams.ErrOut
	}
	switch {
	case next == nil:
		fmt.Fprintf(w, "%s complete: nothing to change (serial %d).\n", c.verb, serial)
	case c.rollbackOf != 0:
		fmt.Fprintf(w, "%s complete: serial %d restores serial %d: %d created, %d updated, %d deleted\n",
			c.verb, next.Serial, c.rollbackOf, p.Summary.Create, p.Summary.Update, p.Summary.Delete)
	default:
		fmt.Fprintf(w, "%s complete: %d created, %d updated, %d deleted (serial %d)\n",
			c.verb, p.Summary.Create, p.Summary.Update, p.Summary.Delete, next.Serial)
	}
	return nil
}

func checkHistoryLimit(n int) error {
	if n < 0 {
		return fmt.Errorf("--history-limit must not be negative, got %d (0 means the default, %d)", n, state.DefaultHistoryLimit)
	}
	return nil
}

// appliedBy names who applies: $EDGECTL_APPLIED_BY, else user@host.
func appliedBy(streams *IO) string {
	if v := streams.getenv(AppliedByEnv); v != "" {
		return v
	}
	return state.CurrentUser()
}

// checkDestroy refuses a plan that deletes every deployed Domain unless
// allowed: nothing would be left to serve.
func checkDestroy(p *plan.Plan, allow bool) error {
	if msg := p.DestroyMessage(); msg != "" && !allow {
		return fmt.Errorf("refusing to apply: %s; nothing was written. If that is what you want, run again with --allow-destroy", msg)
	}
	return nil
}
