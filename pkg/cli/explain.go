package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/edgectl/edgectl/internal/reference"
)

// ExplainOptions are the inputs of edgectl explain.
type ExplainOptions struct {
	IO *IO
	// Path is KIND[.field.path], or "" for the overview.
	Path string
	// Recursive lists every descendant field.
	Recursive bool
	// Engine and Phase filter "explain variables": firewall or application,
	// request or response ("" for all).
	Engine, Phase string
}

func newExplainCmd(streams *IO) *cobra.Command {
	opts := &ExplainOptions{IO: streams}
	cmd := &cobra.Command{
		Use:   "explain [KIND[.field.path] | variables]",
		Short: "Document the manifest language offline: kinds, fields and variables",
		Long: `Explain prints the documentation of a manifest kind or field, as kubectl
explain does: its type, description, allowed values, default, an example and
its fields. Paths start with the kind (any case) and name fields as written in
YAML; list fields are entered without an index.

"edgectl explain variables" lists the variables of the rules engines with
their exact formats and an example, then the operators; --engine and --phase
narrow the list.

The same text is in the JSON Schemas (editors show it on hover) and in
docs/reference/ in the repository.`,
		Example: `  edgectl explain
  edgectl explain Domain
  edgectl explain Domain.spec.mtls.verification
  edgectl explain Application.spec.rules.behaviors
  edgectl explain Firewall --recursive
  edgectl explain variables --engine firewall
  edgectl explain variables --engine application --phase response`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				opts.Path = args[0]
			}
			return runExplain(cmd.Context(), opts)
		},
		ValidArgsFunction: explainCompletion,
	}
	cmd.Flags().BoolVarP(&opts.Recursive, "recursive", "r", false, "list every field below the path, as a tree")
	cmd.Flags().StringVar(&opts.Engine, "engine", "", "with variables: only the firewall or the application engine's")
	cmd.Flags().StringVar(&opts.Phase, "phase", "", "with variables: only those of the request or the response phase")
	_ = cmd.RegisterFlagCompletionFunc("engine", cobra.FixedCompletions([]string{"firewall", "application"}, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("phase", cobra.FixedCompletions([]string{"request", "response"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func runExplain(_ context.Context, opts *ExplainOptions) error {
	m, err := reference.Load()
	if err != nil {
		return err
	}
	if strings.EqualFold(opts.Path, "variables") {
		if opts.Engine != "" && opts.Engine != "firewall" && opts.Engine != "application" {
			return fmt.Errorf("unknown engine %q: use firewall or application", opts.Engine)
		}
		if opts.Phase != "" && opts.Phase != "request" && opts.Phase != "response" {
			return fmt.Errorf("unknown phase %q: use request or response", opts.Phase)
		}
		if opts.Engine == "firewall" && opts.Phase == "response" {
			return fmt.Errorf("the firewall has no response phase: its rules run before the application")
		}
		return m.ExplainVariables(opts.IO.Out, opts.Engine, opts.Phase)
	}
	if opts.Engine != "" || opts.Phase != "" {
		return fmt.Errorf("--engine and --phase apply to edgectl explain variables")
	}
	if opts.Path == "" {
		return m.Overview(opts.IO.Out)
	}
	kind, field, canonical, err := m.Lookup(opts.Path)
	if err != nil {
		var le *reference.LookupError
		if errors.As(err, &le) && le.Path != "" {
			return fmt.Errorf("%w; see edgectl explain %s", err, le.Path)
		}
		return fmt.Errorf("%w; see edgectl explain", err)
	}
	return m.ExplainField(opts.IO.Out, kind, field, canonical, opts.Recursive)
}

// explainCompletion completes kinds and field paths.
func explainCompletion(_ *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	m, err := reference.Load()
	if err != nil {
		return nil, cobra.ShellCompDirectiveError
	}
	var out []string
	i := strings.LastIndex(toComplete, ".")
	if i < 0 {
		out = append(out, m.KindNames()...)
		out = append(out, "variables")
		return out, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveNoSpace
	}
	_, f, canonical, err := m.Lookup(toComplete[:i])
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	for _, c := range f.Fields {
		out = append(out, canonical+"."+c.Name)
	}
	return out, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveNoSpace
}
