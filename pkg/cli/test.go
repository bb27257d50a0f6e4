package cli

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"regexp"
	"time"

	"github.com/spf13/cobra"

	"github.com/edgectl/edgectl/pkg/edgetest"
	"github.com/edgectl/edgectl/pkg/validate"
)

// TestOptions are the inputs of edgectl test.
type TestOptions struct {
	IO *IO
	// Files are test suites and manifests: files, directories or "-" for stdin.
	Files []string
	// Target is the address of a running edge (--target); it overrides the
	// suites' own target. Empty runs suites without a target in-process.
	Target string
	// Output is "text" or "json".
	Output string
	// JUnit is a file to write a JUnit XML report to.
	JUnit string
	// Run selects the cases whose "suite/case" name this regular expression matches.
	Run string
	// Timeout bounds each case.
	Timeout time.Duration
	// Now overrides the clock of validation (tests).
	Now time.Time
}

func newTestCmd(streams *IO) *cobra.Command {
	opts := &TestOptions{IO: streams}
	cmd := &cobra.Command{
		Use:   "test -f SUITES... [-f MANIFESTS...] [--target HOST:PORT]",
		Short: "Run TestSuite cases: real client-certificate handshakes and requests",
		Long: `Test runs the cases of TestSuite manifests. Each case opens a fresh TLS
connection with its SNI, client certificate and TLS versions, sends one
HTTP/1.1 request, and checks the expectations: handshake accepted or rejected
(a TLS 1.3 rejection is detected on the first read), the alert (RFC 8446
names such as certificate_required, unknown_ca, certificate_expired), status,
response headers and body, and what the origin received.

With --target HOST:PORT (or a suite's target) the cases run against a running
edge. Otherwise the manifests given with -f are validated and compiled with
the same compiler as serve, and the edge runs in-process on 127.0.0.1 with
every application's origin replaced by a recording origin, so that a change
is proven before it is applied. originReached, originHeaders and
originAbsentHeaders need that recording origin: against a running edge they
are a usage error.

--run REGEX selects the cases whose "suite/case" name it matches.

Results go to stdout (one line per case and a summary, or -o json);
--junit FILE also writes JUnit XML for CI.

Exit status: 0 when every selected case passes, 1 when any fails or the
cases cannot run (invalid manifests, no case selected, origin expectations
against a running edge).`,
		Example: `  edgectl test -f examples/open-banking/tests -f examples/open-banking
  edgectl test -f tests/ --target edge.internal:443 --junit report.xml
  edgectl test -f tests/ -f manifests/ --run 'open-banking/partner' -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runTest(cmd.Context(), opts)
		},
	}
	f := cmd.Flags()
	f.StringArrayVarP(&opts.Files, "filename", "f", nil, "test suite or manifest file, directory (recursive) or - for stdin; repeatable")
	f.StringVar(&opts.Target, "target", "", "test the running edge at `HOST:PORT` instead of an in-process one")
	f.StringVarP(&opts.Output, "output", "o", "text", "output format: text or json")
	f.StringVar(&opts.JUnit, "junit", "", "also write a JUnit XML report to `FILE`")
	f.StringVar(&opts.Run, "run", "", "run only the cases whose suite/case name matches `REGEX`")
	f.DurationVar(&opts.Timeout, "timeout", edgetest.DefaultCaseTimeout, "time each case has to connect, shake hands and get its response")
	_ = cmd.MarkFlagRequired("filename")
	_ = cmd.MarkFlagFilename("filename", "yaml", "yml")
	_ = cmd.MarkFlagFilename("junit", "xml")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"text", "json"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// runTest loads and validates the files, gives every suite its target
// (booting the in-process edge when a suite has none), runs the cases and
// writes the reports.
func runTest(ctx context.Context, opts *TestOptions) error {
	runner, err := newTestRunner(opts)
	if err != nil {
		return err
	}
	res, diags := loadAndValidate(opts.IO, opts.Files, opts.Now)
	wd, _ := os.Getwd()
	diags = diags.Normalized(wd, false)
	diags.WriteText(opts.IO.ErrOut)
	if diags.HasErrors() {
		fmt.Fprintf(opts.IO.ErrOut, "invalid: %s\n", counts(diags))
		return errSilent(ExitError)
	}
	if len(res.Suites) == 0 {
		return fmt.Errorf("no TestSuite in the files given: add the suites with -f")
	}
	runs, stop, err := testTargets(opts, runner, res)
	if err != nil {
		return err
	}
	defer stop()
	if errs := runner.Check(runs); len(errs) > 0 {
		for _, err := range errs {
			fmt.Fprintf(opts.IO.ErrOut, "edgectl: %v\n", err)
		}
		return errSilent(ExitError)
	}
	return runAndReport(ctx, opts, runner, runs)
}

// newTestRunner checks the flags and returns the runner they describe.
func newTestRunner(opts *TestOptions) (*edgetest.Runner, error) {
	if err := checkOutput(opts.Output, "text", "json"); err != nil {
		return nil, err
	}
	if opts.Timeout <= 0 {
		return nil, fmt.Errorf("--timeout must be positive, got %s", opts.Timeout)
	}
	runner := &edgetest.Runner{CaseTimeout: opts.Timeout}
	if opts.Run != "" {
		re, err := regexp.Compile(opts.Run)
		if err != nil {
			return nil, fmt.Errorf("--run: %w", err)
		}
		runner.Select = re
	}
	return runner, nil
}

// testTargets returns the runs of the suites, each with its target:
// --target, the suite's own, or else the in-process edge, built from the
// desired manifests only when a selected case needs it. stop stops that
// edge.
func testTargets(opts *TestOptions, runner *edgetest.Runner, res *validate.Result) (runs []edgetest.Run, stop func(), err error) {
	runs = make([]edgetest.Run, len(res.Suites))
	var local []int
	for i, doc := range res.Suites {
		s := edgetest.SuiteFromDocument(doc)
		runs[i].Suite = s
		switch {
		case opts.Target != "":
			runs[i].Target.Addr = opts.Target
		case s.Spec.Target != "":
			runs[i].Target.Addr = s.Spec.Target
		default:
			local = append(local, i)
		}
	}
	if runner.Selected(runs) == 0 {
		return nil, nil, fmt.Errorf("no test case matches --run %q", opts.Run)
	}
	localRuns := make([]edgetest.Run, 0, len(local))
	for _, i := range local {
		localRuns = append(localRuns, runs[i])
	}
	if runner.Selected(localRuns) == 0 {
		return runs, func() {}, nil
	}
	e, err := edgetest.StartEdge(res.Desired(), edgetest.EdgeOptions{})
	if err != nil {
		return nil, nil, err
	}
	fmt.Fprintf(opts.IO.ErrOut, "in-process edge on %s: %s, %s with recording origins\n", e.Addr, plural(e.Domains, "domain"), plural(e.Origins, "application"))
	for _, i := range local {
		runs[i].Target = e.Target()
	}
	return runs, e.Close, nil
}

// runAndReport runs the cases and writes the report (text or JSON on
// stdout, and the JUnit file); it fails when a case failed.
func runAndReport(ctx context.Context, opts *TestOptions, runner *edgetest.Runner, runs []edgetest.Run) error {
	if opts.Output == "text" {
		runner.OnCase = func(_ *edgetest.SuiteResult, c *edgetest.CaseResult) { edgetest.WriteCaseText(opts.IO.Out, c) }
	}
	rep := runner.Run(ctx, runs)
	if opts.Output == "json" {
		if err := edgetest.WriteJSON(opts.IO.Out, rep); err != nil {
			return err
		}
	} else {
		edgetest.WriteSummaryText(opts.IO.Out, rep)
	}
	if opts.JUnit != "" {
		var buf bytes.Buffer
		if err := edgetest.WriteJUnit(&buf, rep); err != nil {
			return err
		}
		if err := os.WriteFile(opts.JUnit, buf.Bytes(), 0o644); err != nil {
			return fmt.Errorf("writing the JUnit report: %w", err)
		}
	}
	if !rep.OK() {
		return errSilent(ExitError)
	}
	return nil
}
