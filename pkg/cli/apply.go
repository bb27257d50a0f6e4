package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/edgectl/edgectl/pkg/plan"
	"github.com/edgectl/edgectl/pkg/state"
)

// ApplyOptions are the inputs of edgectl apply.
type ApplyOptions struct {
	IO *IO
	// Files are manifest files, directories or "-" for stdin (apply -f).
	Files []string
	// PlanFile is a saved plan to apply exactly (apply FILE).
	PlanFile string
	// StateFlags choose the state store: --state and the etcd TLS flags.
	StateFlags
	// NoColor turns colors off on a terminal.
	NoColor bool
	// AllowDestroy applies a plan that leaves no Domain while the deployed
	// state has some (--allow-destroy).
	AllowDestroy bool
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
unless --allow-destroy is given.`,
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
	cmd.Flags().BoolVar(&opts.NoColor, "no-color", false, "never color the text output")
	cmd.Flags().BoolVar(&opts.AllowDestroy, "allow-destroy", false, "apply a plan that deletes every deployed Domain")
	addStateFlags(cmd, &opts.StateFlags)
	_ = cmd.MarkFlagFilename("filename", "yaml", "yml")
	return cmd
}

func runApply(ctx context.Context, opts *ApplyOptions) (err error) {
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
		if desired, err = desiredResources(opts.IO, opts.Files); err != nil {
			return err
		}
	default:
		return errors.New("apply needs a saved plan FILE or -f PATH... (see edgectl apply --help)")
	}
	store, err := openStateStore(opts.IO, opts.StateFlags)
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
	if err := plan.WriteText(opts.IO.Out, p, plan.TextOptions{Color: useColor(opts.IO, opts.NoColor)}); err != nil {
		return err
	}
	if !p.HasChanges() {
		_, serial := prior.Version()
		fmt.Fprintf(opts.IO.Out, "Apply complete: nothing to change (serial %d).\n", serial)
		return nil
	}
	if err := checkDestroy(p, opts.AllowDestroy); err != nil {
		return err
	}
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	next := p.Snapshot(now)
	if err := store.Write(ctx, next, p.Lineage, p.PriorSerial); err != nil {
		return err
	}
	fmt.Fprintf(opts.IO.Out, "Apply complete: %d created, %d updated, %d deleted (serial %d)\n",
		p.Summary.Create, p.Summary.Update, p.Summary.Delete, next.Serial)
	return nil
}

// checkDestroy refuses a plan that deletes every deployed Domain unless
// allowed: nothing would be left to serve.
func checkDestroy(p *plan.Plan, allow bool) error {
	if msg := p.DestroyMessage(); msg != "" && !allow {
		return fmt.Errorf("refusing to apply: %s; nothing was written. If that is what you want, run again with --allow-destroy", msg)
	}
	return nil
}
