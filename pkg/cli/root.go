package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/edgectl/edgectl/pkg/diag"
)

// Exit codes.
const (
	ExitOK      = 0
	ExitError   = 1
	ExitChanges = 2
)

// IO holds the streams a verb reads and writes.
type IO struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer
	// Getenv reads the environment (os.Getenv when nil).
	Getenv func(string) string
}

func (s *IO) getenv(k string) string {
	if s.Getenv == nil {
		return os.Getenv(k)
	}
	return s.Getenv(k)
}

// exitError carries an exit code through cobra without printing anything more.
type exitError struct{ code int }

func (e *exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// errSilent makes the command exit with code after the run function has
// already reported what went wrong.
func errSilent(code int) error { return &exitError{code: code} }

// Main runs edgectl with os.Args and the process's streams, and returns the exit code.
func Main() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return Run(ctx, os.Args[1:], &IO{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr})
}

// Run executes edgectl with args and returns the exit code.
func Run(ctx context.Context, args []string, streams *IO) int {
	root := NewRootCmd(streams)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	var le *diag.ListError
	if errors.As(err, &le) {
		le.List.WriteText(streams.ErrOut)
		return ExitError
	}
	fmt.Fprintf(streams.ErrOut, "edgectl: %v\n", err)
	return ExitError
}

// NewRootCmd builds the command tree.
func NewRootCmd(streams *IO) *cobra.Command {
	root := &cobra.Command{
		Use:   "edgectl",
		Short: "A self-hosted mTLS edge configured as code",
		Long: `edgectl runs an mTLS edge from YAML manifests kept in Git.

Write manifests (Certificate, TrustedCA, NetworkList, Application, Firewall,
Domain, TestSuite), check them with "edgectl validate", and read the
manifest language offline with "edgectl explain".`,
		Version:       Version(),
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(streams.In)
	root.SetOut(streams.Out)
	root.SetErr(streams.ErrOut)
	root.SetVersionTemplate(GetBuildInfo().String())
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return fmt.Errorf("%w (see %s --help)", err, c.CommandPath())
	})
	root.AddCommand(newValidateCmd(streams))
	root.AddCommand(newPlanCmd(streams))
	root.AddCommand(newApplyCmd(streams))
	root.AddCommand(newStateCmd(streams))
	root.AddCommand(newServeCmd(streams))
	root.AddCommand(newTestCmd(streams))
	root.AddCommand(newVersionCmd(streams))
	root.AddCommand(newExplainCmd(streams))
	root.InitDefaultCompletionCmd()
	refuseUnknownSubcommands(root)
	return root
}

// refuseUnknownSubcommands makes every command that only groups others
// (state, completion, the root) fail with exit 1 and suggestions when its
// first argument names no subcommand, instead of printing its help and
// exiting 0. Without arguments it prints its help.
func refuseUnknownSubcommands(cmd *cobra.Command) {
	for _, sub := range cmd.Commands() {
		refuseUnknownSubcommands(sub)
	}
	if !cmd.HasSubCommands() || cmd.Runnable() {
		return
	}
	cmd.Args = cobra.ArbitraryArgs
	cmd.RunE = func(c *cobra.Command, args []string) error {
		if len(args) == 0 {
			return c.Help()
		}
		return unknownCommand(c, args[0])
	}
}

// unknownCommand is the error for a subcommand name that cmd does not have,
// with the closest names it has.
func unknownCommand(cmd *cobra.Command, name string) error {
	msg := fmt.Sprintf("unknown command %q for %q", name, cmd.CommandPath())
	if cmd.SuggestionsMinimumDistance <= 0 {
		cmd.SuggestionsMinimumDistance = 2
	}
	if s := cmd.SuggestionsFor(name); len(s) > 0 {
		msg += "; did you mean " + quoteJoin(s) + "?"
	}
	var names []string
	for _, sub := range cmd.Commands() {
		if sub.IsAvailableCommand() {
			names = append(names, sub.Name())
		}
	}
	return fmt.Errorf("%s (%s has: %s; see %s --help)", msg, cmd.CommandPath(), strings.Join(names, ", "), cmd.CommandPath())
}

func quoteJoin(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = strconv.Quote(n)
	}
	if len(q) == 1 {
		return q[0]
	}
	return strings.Join(q[:len(q)-1], ", ") + " or " + q[len(q)-1]
}
