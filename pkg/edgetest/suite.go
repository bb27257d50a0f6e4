package edgetest

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/edgectl/edgectl/pkg/manifest"
	"github.com/edgectl/edgectl/pkg/pki"
)

// DefaultCaseTimeout bounds one case: connection, handshake, request and
// response.
const DefaultCaseTimeout = 10 * time.Second

// MaxBody is how much of a response body is kept for the body expectation.
const MaxBody = 1 << 20

// Suite is a TestSuite ready to run.
type Suite struct {
	// Name is the suite's metadata.name.
	Name string
	// File is the manifest file the suite was read from, for reports.
	File string
	// Dir is the directory that the suite's relative file paths resolve against.
	Dir string
	// Spec holds the suite's cases.
	Spec *manifest.TestSuiteSpec
}

// SuiteFromDocument returns the suite of a TestSuite document.
func SuiteFromDocument(d *manifest.Document) Suite {
	spec, _ := d.Spec.(*manifest.TestSuiteSpec)
	if spec == nil {
		spec = &manifest.TestSuiteSpec{}
	}
	return Suite{Name: d.Name(), File: d.File, Dir: d.Dir, Spec: spec}
}

// resolve makes a file path of the suite absolute against its directory.
func (s Suite) resolve(p string) string {
	if p == "" || filepath.IsAbs(p) || s.Dir == "" {
		return p
	}
	return filepath.Join(s.Dir, p)
}

// Target is the edge a suite runs against.
type Target struct {
	// Addr is the edge's HOST:PORT.
	Addr string
	// Origin records what the edge's origins received. It is set only for an
	// in-process edge; without it, origin expectations cannot be checked.
	Origin Origin
}

// Origin is a recording origin.
type Origin interface {
	// Received returns the requests the origin received for the case whose
	// requests carried id in the CaseHeader header.
	Received(id string) []OriginRequest
}

// CaseHeader is the request header that correlates a case's request with
// what the recording origin received. It is sent only to an in-process edge
// and the recording origin removes it before recording.
const CaseHeader = "Edgectl-Test-Case"

// Run is a suite with the edge it runs against.
type Run struct {
	Suite  Suite
	Target Target
}

// Runner runs test cases. The zero value is ready to use.
type Runner struct {
	// Dial opens the TCP connection to the edge (default: a net.Dialer).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// ReadFile reads CA bundles, client certificates and keys (default os.ReadFile).
	ReadFile func(string) ([]byte, error)
	// CaseTimeout bounds each case (default DefaultCaseTimeout).
	CaseTimeout time.Duration
	// Select, when set, runs only the cases whose full name
	// ("suite/case") it matches.
	Select *regexp.Regexp
	// OnCase, when set, is called after each case, in order.
	OnCase func(suite *SuiteResult, c *CaseResult)
}

// FullName is how a case is named in reports and selected by Runner.Select.
func FullName(suite, name string) string { return suite + "/" + name }

// selected returns the cases of s that the runner runs, in order.
func (r *Runner) selected(s Suite) []manifest.TestCase {
	var out []manifest.TestCase
	for _, c := range s.Spec.Cases {
		if r.Select == nil || r.Select.MatchString(FullName(s.Name, c.Name)) {
			out = append(out, c)
		}
	}
	return out
}

// Selected returns how many cases of runs the runner would run.
func (r *Runner) Selected(runs []Run) int {
	n := 0
	for _, run := range runs {
		n += len(r.selected(run.Suite))
	}
	return n
}

// originFields names the expectations that need a recording origin.
func originFields(e manifest.Expect) []string {
	var f []string
	if e.OriginReached != nil {
		f = append(f, "originReached")
	}
	if len(e.OriginHeaders) > 0 {
		f = append(f, "originHeaders")
	}
	if len(e.OriginAbsentHeaders) > 0 {
		f = append(f, "originAbsentHeaders")
	}
	return f
}

// Check returns the reasons the selected cases of runs cannot run, each
// naming its case: origin expectations against an edge without a
// recording origin, unknown alert names, invalid regular expressions,
// unknown TLS versions.
func (r *Runner) Check(runs []Run) []error {
	var errs []error
	for _, run := range runs {
		for _, c := range r.selected(run.Suite) {
			name := FullName(run.Suite.Name, c.Name)
			if f := originFields(c.Expect); len(f) > 0 && run.Target.Origin == nil {
				errs = append(errs, fmt.Errorf("%s: %s cannot be checked against a running edge (%s): only the in-process edge has a recording origin; run without --target and with -f MANIFESTS, or remove the expectation", name, strings.Join(f, ", "), run.Target.Addr))
			}
			if a := c.Expect.Alert; a != "" {
				if _, ok := pki.NormalizeAlert(a); !ok {
					errs = append(errs, fmt.Errorf("%s: unknown TLS alert %q: use an RFC 8446 name such as certificate_required, bad_certificate, unknown_ca or certificate_expired", name, a))
				}
			}
			for _, kv := range []struct {
				field string
				m     map[string]string
			}{{"headers", c.Expect.Headers}, {"originHeaders", c.Expect.OriginHeaders}} {
				for _, h := range sortedKeys(kv.m) {
					if _, err := newMatcher(kv.m[h]); err != nil {
						errs = append(errs, fmt.Errorf("%s: expect.%s.%s: %v", name, kv.field, h, err))
					}
				}
			}
			if c.TLS != nil {
				for _, v := range []string{c.TLS.MinVersion, c.TLS.MaxVersion} {
					if _, err := tlsVersion(v, 0); err != nil {
						errs = append(errs, fmt.Errorf("%s: %v", name, err))
					}
				}
			}
			if run.Target.Addr == "" {
				errs = append(errs, fmt.Errorf("%s: no edge address to test", name))
			}
		}
	}
	return errs
}

// Run runs the selected cases of every run in order, each on a fresh TLS
// connection, and returns the report.
func (r *Runner) Run(ctx context.Context, runs []Run) *Report {
	rep := &Report{FormatVersion: ReportFormatVersion}
	start := time.Now()
	runID := newRunID()
	seq := 0
	for _, run := range runs {
		cases := r.selected(run.Suite)
		if len(cases) == 0 {
			continue
		}
		sr := &SuiteResult{Name: run.Suite.Name, File: run.Suite.File, Target: run.Target.Addr, InProcess: run.Target.Origin != nil}
		suiteStart := time.Now()
		roots, rootsErr := r.roots(run.Suite)
		for _, c := range cases {
			seq++
			cr := &CaseResult{Name: c.Name, FullName: FullName(run.Suite.Name, c.Name)}
			caseStart := time.Now()
			if rootsErr != nil {
				cr.Error = rootsErr.Error()
			} else {
				id := fmt.Sprintf("%s-%d", runID, seq)
				obs, err := r.runCase(ctx, run, c, roots, id)
				if err != nil {
					cr.Error = err.Error()
				} else {
					cr.Observed = obs
					cr.Failures = compare(c.Expect, obs)
				}
			}
			cr.Duration = time.Since(caseStart)
			cr.Passed = cr.Error == "" && len(cr.Failures) == 0
			sr.Cases = append(sr.Cases, cr)
			if cr.Passed {
				sr.Passed++
			} else {
				sr.Failed++
			}
			if r.OnCase != nil {
				r.OnCase(sr, cr)
			}
		}
		sr.Duration = time.Since(suiteStart)
		rep.Suites = append(rep.Suites, sr)
		rep.Summary.Passed += sr.Passed
		rep.Summary.Failed += sr.Failed
	}
	rep.Summary.Total = rep.Summary.Passed + rep.Summary.Failed
	rep.Duration = time.Since(start)
	return rep
}

func newRunID() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (r *Runner) readFile(p string) ([]byte, error) {
	if r.ReadFile != nil {
		return r.ReadFile(p)
	}
	return os.ReadFile(p)
}

// roots returns the pool that verifies the edge: the suite's caFile, or nil
// (the system roots) without one.
func (r *Runner) roots(s Suite) (*x509.CertPool, error) {
	if s.Spec.CAFile == "" {
		return nil, nil
	}
	data, err := r.readFile(s.resolve(s.Spec.CAFile))
	if err != nil {
		return nil, fmt.Errorf("caFile: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("caFile %s: no PEM certificate", s.Spec.CAFile)
	}
	return pool, nil
}

// clientCertificate loads the case's client certificate, if any.
func (r *Runner) clientCertificate(s Suite, c manifest.TestCase) (*tls.Certificate, error) {
	cc := c.ClientCertificate
	if cc == nil {
		return nil, nil
	}
	certPEM, err := r.readFile(s.resolve(cc.CertificateFile))
	if err != nil {
		return nil, fmt.Errorf("clientCertificate: %w", err)
	}
	keyPEM, err := r.readFile(s.resolve(cc.PrivateKeyFile))
	if err != nil {
		return nil, fmt.Errorf("clientCertificate: %w", err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("clientCertificate: %w", err)
	}
	return &cert, nil
}

// tlsVersion parses "1.2" or "1.3"; "" gives def.
func tlsVersion(v string, def uint16) (uint16, error) {
	switch v {
	case "":
		return def, nil
	case "1.2":
		return tls.VersionTLS12, nil
	case "1.3":
		return tls.VersionTLS13, nil
	}
	return 0, fmt.Errorf("unknown TLS version %q: use 1.2 or 1.3", v)
}

func versionName(v uint16) string {
	switch v {
	case tls.VersionTLS12:
		return "1.2"
	case tls.VersionTLS13:
		return "1.3"
	}
	return strings.TrimPrefix(tls.VersionName(v), "TLS ")
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

var errNoAddr = errors.New("no edge address to test")
