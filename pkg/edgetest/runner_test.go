package edgetest_test

import (
	"bytes"
	"context"
	"encoding/xml"
	"net"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/edgectl/edgectl/pkg/edgetest"
	"github.com/edgectl/edgectl/pkg/manifest"
)

// TestExpectations runs every expectation kind, passing and failing, against
// an in-process edge, and checks the exact messages of the failures.
func TestExpectations(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	e := f.start(t)
	valid := client("valid")
	tests := map[string]struct {
		c    manifest.TestCase
		want []string
	}{
		"accepted passes":        {c: manifest.TestCase{ServerName: "api.bank.test", ClientCertificate: valid, Expect: manifest.Expect{Handshake: "accepted"}}},
		"accepted fails":         {c: manifest.TestCase{ServerName: "api.bank.test", Expect: manifest.Expect{Handshake: "accepted", Status: 200}}, want: []string{"handshake: expected accepted, got rejected (alert certificate_required)"}},
		"rejected fails":         {c: manifest.TestCase{ServerName: "api.bank.test", ClientCertificate: valid, Expect: manifest.Expect{Handshake: "rejected"}}, want: []string{"handshake: expected rejected, got accepted (status 200)"}},
		"alert implies rejected": {c: manifest.TestCase{ServerName: "api.bank.test", ClientCertificate: valid, Expect: manifest.Expect{Alert: "unknown_ca"}}, want: []string{"handshake: expected rejected, got accepted (status 200)"}},
		"status passes":          {c: manifest.TestCase{ServerName: "api.bank.test", ClientCertificate: valid, Expect: manifest.Expect{Status: 200}}},
		"status fails":           {c: manifest.TestCase{ServerName: "api.bank.test", ClientCertificate: valid, Expect: manifest.Expect{Status: 201}}, want: []string{"status: expected 201, got 200"}},
		"headers exact passes":   {c: manifest.TestCase{ServerName: "api.bank.test", ClientCertificate: valid, Expect: manifest.Expect{Headers: map[string]string{"edge": "edgectl"}}}},
		"headers exact fails":    {c: manifest.TestCase{ServerName: "api.bank.test", ClientCertificate: valid, Expect: manifest.Expect{Headers: map[string]string{"Edge": "nginx"}}}, want: []string{`headers.Edge: expected "nginx", got "edgectl"`}},
		"headers regex passes":   {c: manifest.TestCase{ServerName: "api.bank.test", ClientCertificate: valid, Expect: manifest.Expect{Headers: map[string]string{"Content-Type": "~^text/plain"}}}},
		"headers regex fails":    {c: manifest.TestCase{ServerName: "api.bank.test", ClientCertificate: valid, Expect: manifest.Expect{Headers: map[string]string{"Edge": "~^ngi"}}}, want: []string{`headers.Edge: expected a value matching "^ngi", got "edgectl"`}},
		"headers missing fails":  {c: manifest.TestCase{ServerName: "api.bank.test", ClientCertificate: valid, Expect: manifest.Expect{Headers: map[string]string{"X-Missing": "~.*"}}}, want: []string{`headers.X-Missing: expected a value matching ".*", got no such header`}},
		"body passes":            {c: manifest.TestCase{ServerName: "api.bank.test", ClientCertificate: valid, Expect: manifest.Expect{Body: "origin of application api"}}},
		"body fails": {c: manifest.TestCase{ServerName: "api.bank.test", ClientCertificate: valid, Request: &manifest.TestRequest{Path: "/teapot"}, Expect: manifest.Expect{Body: "tall"}},
			want: []string{`body: expected a body containing "tall", got "short and stout"`}},
		"originReached passes": {c: manifest.TestCase{ServerName: "api.bank.test", ClientCertificate: valid, Expect: manifest.Expect{OriginReached: ptr(true)}}},
		"originReached fails": {c: manifest.TestCase{ServerName: "api.bank.test", ClientCertificate: valid, Request: &manifest.TestRequest{Path: "/accounts?x=1"}, Expect: manifest.Expect{OriginReached: ptr(false)}},
			want: []string{"originReached: expected false, got true (1 request(s): GET /base/accounts?x=1 to application api)"}},
		"originReached false fails": {c: manifest.TestCase{ServerName: "api.bank.test", ClientCertificate: valid, Request: &manifest.TestRequest{Path: "/teapot"}, Expect: manifest.Expect{Status: 418, OriginReached: ptr(true)}},
			want: []string{"originReached: expected true, got false"}},
		"originHeaders exact passes": {c: manifest.TestCase{ServerName: "api.bank.test", ClientCertificate: valid, Expect: manifest.Expect{OriginHeaders: map[string]string{"Client-Cert-Subject": "partner-app", "client-verify": "SUCCESS"}}}},
		"originHeaders regex passes": {c: manifest.TestCase{ServerName: "api.bank.test", ClientCertificate: valid, Expect: manifest.Expect{OriginHeaders: map[string]string{"X-Forwarded-For": "~^127\\.0\\.0\\.1$"}}}},
		"originHeaders fails": {c: manifest.TestCase{ServerName: "api.bank.test", ClientCertificate: valid, Expect: manifest.Expect{OriginHeaders: map[string]string{"Client-Cert-Subject": "admin", "Client-Verify": "~^FAILED", "X-Nothing": "x"}}},
			want: []string{`originHeaders.Client-Cert-Subject: expected "admin", got "partner-app"`, `originHeaders.Client-Verify: expected a value matching "^FAILED", got "SUCCESS"`, `originHeaders.X-Nothing: expected "x", got no such header`}},
		"originHeaders without origin fails": {c: manifest.TestCase{ServerName: "portal.bank.test", Expect: manifest.Expect{Status: 403, OriginHeaders: map[string]string{"Client-Verify": "NONE"}}},
			want: []string{`originHeaders.Client-Verify: expected "NONE", got origin not reached`}},
		"spoofed identity is replaced": {c: manifest.TestCase{ServerName: "api.bank.test", ClientCertificate: valid,
			Request: &manifest.TestRequest{Headers: map[string]string{"Client-Cert-Subject": "admin", "client_cert_subject": "admin"}},
			Expect:  manifest.Expect{OriginHeaders: map[string]string{"Client-Cert-Subject": "partner-app"}, OriginAbsentHeaders: []string{"client_cert_subject"}}}},
		"originAbsentHeaders fails": {c: manifest.TestCase{ServerName: "open.bank.test",
			Request: &manifest.TestRequest{Headers: map[string]string{"X_Spoof": "admin"}},
			Expect:  manifest.Expect{OriginAbsentHeaders: []string{"x_spoof", "Client-Cert-Subject"}}},
			want: []string{`originAbsentHeaders.x_spoof: expected no such header, got "admin"`}},
		"case header never reaches the origin": {c: manifest.TestCase{ServerName: "open.bank.test", Expect: manifest.Expect{OriginAbsentHeaders: []string{edgetest.CaseHeader}, OriginHeaders: map[string]string{"User-Agent": edgetest.UserAgent}}}},

		"no certificate TLS 1.3": {c: manifest.TestCase{ServerName: "api.bank.test", TLS: tlsVersion("1.3"), Expect: manifest.Expect{Handshake: "rejected", Alert: "certificate_required"}}},
		"no certificate TLS 1.2": {c: manifest.TestCase{ServerName: "api.bank.test", TLS: tlsVersion("1.2"), Expect: manifest.Expect{Handshake: "rejected", Alert: "handshake_failure"}}},
		"untrusted TLS 1.3":      {c: manifest.TestCase{ServerName: "api.bank.test", TLS: tlsVersion("1.3"), ClientCertificate: client("untrusted"), Expect: manifest.Expect{Handshake: "rejected", Alert: "unknown_ca", OriginReached: ptr(false)}}},
		"untrusted TLS 1.2":      {c: manifest.TestCase{ServerName: "api.bank.test", TLS: tlsVersion("1.2"), ClientCertificate: client("untrusted"), Expect: manifest.Expect{Handshake: "rejected", Alert: "unknown_ca"}}},
		"untrusted Go spelling":  {c: manifest.TestCase{ServerName: "api.bank.test", ClientCertificate: client("untrusted"), Expect: manifest.Expect{Alert: "unknown_certificate_authority"}}},
		"expired TLS 1.3":        {c: manifest.TestCase{ServerName: "api.bank.test", TLS: tlsVersion("1.3"), ClientCertificate: client("expired"), Expect: manifest.Expect{Handshake: "rejected", Alert: "certificate_expired"}}},
		"expired TLS 1.2":        {c: manifest.TestCase{ServerName: "api.bank.test", TLS: tlsVersion("1.2"), ClientCertificate: client("expired"), Expect: manifest.Expect{Handshake: "rejected", Alert: "certificate_expired"}}},
		"alert fails TLS 1.3":    {c: manifest.TestCase{ServerName: "api.bank.test", TLS: tlsVersion("1.3"), ClientCertificate: client("untrusted"), Expect: manifest.Expect{Handshake: "rejected", Alert: "bad_certificate"}}, want: []string{"alert: expected bad_certificate, got unknown_ca"}},
		"alert fails TLS 1.2":    {c: manifest.TestCase{ServerName: "api.bank.test", TLS: tlsVersion("1.2"), Expect: manifest.Expect{Handshake: "rejected", Alert: "certificate_required"}}, want: []string{"alert: expected certificate_required, got handshake_failure"}},
		"unknown server name":    {c: manifest.TestCase{ServerName: "nobody.bank.test", Expect: manifest.Expect{Handshake: "rejected", Alert: "unrecognized_name"}}},
		"rejected cannot reach":  {c: manifest.TestCase{ServerName: "api.bank.test", Expect: manifest.Expect{Handshake: "rejected", OriginReached: ptr(true)}}, want: []string{"originReached: expected true, got false (the handshake was rejected)"}},

		"permissive denies":  {c: manifest.TestCase{ServerName: "portal.bank.test", ClientCertificate: client("untrusted"), Expect: manifest.Expect{Handshake: "accepted", Status: 403, OriginReached: ptr(false)}}},
		"permissive admits":  {c: manifest.TestCase{ServerName: "portal.bank.test", ClientCertificate: valid, Expect: manifest.Expect{Status: 200, OriginHeaders: map[string]string{"Client-Verify": "SUCCESS"}}}},
		"host differs":       {c: manifest.TestCase{ServerName: "api.bank.test", ClientCertificate: valid, Request: &manifest.TestRequest{Headers: map[string]string{"host": "open.bank.test"}}, Expect: manifest.Expect{Status: 421, OriginReached: ptr(false)}}},
		"custom response":    {c: manifest.TestCase{ServerName: "api.bank.test", ClientCertificate: valid, Request: &manifest.TestRequest{Path: "/teapot"}, Expect: manifest.Expect{Status: 418, Body: "stout", Headers: map[string]string{"Content-Type": "text/plain"}}}},
		"dropped connection": {c: manifest.TestCase{ServerName: "api.bank.test", ClientCertificate: valid, Request: &manifest.TestRequest{Path: "/drop"}, Expect: manifest.Expect{Status: 200}}, want: []string{"status: expected 200, got no response (the edge closed the connection without a response)"}},
		"method path body reach the origin": {c: manifest.TestCase{ServerName: "open.bank.test",
			Request: &manifest.TestRequest{Method: "POST", Path: "/payments", Body: `{"amount": 1}`, Headers: map[string]string{"Content-Type": "application/json"}},
			Expect:  manifest.Expect{Status: 200, Body: "received POST /base/payments", OriginHeaders: map[string]string{"Content-Type": "application/json", "Content-Length": "13"}}}},
	}
	var cases []manifest.TestCase
	for name, tc := range tests {
		tc.c.Name = name
		cases = append(cases, tc.c)
	}
	var r edgetest.Runner
	runs := []edgetest.Run{{Suite: f.suite("expectations", cases...), Target: e.Target()}}
	if errs := r.Check(runs); len(errs) > 0 {
		t.Fatal(errs)
	}
	rep := r.Run(context.Background(), runs)
	if len(rep.Suites) != 1 || len(rep.Suites[0].Cases) != len(tests) {
		t.Fatalf("report has %d suites, want 1 with %d cases", len(rep.Suites), len(tests))
	}
	failed := 0
	for _, c := range rep.Suites[0].Cases {
		t.Run(c.Name, func(t *testing.T) {
			want := tests[c.Name].want
			if diff := cmp.Diff(want, c.Messages()); diff != "" {
				t.Errorf("messages (-want +got):\n%s", diff)
			}
			if c.Passed != (len(want) == 0) {
				t.Errorf("passed = %v with messages %q", c.Passed, c.Messages())
			}
			if c.FullName != "expectations/"+c.Name {
				t.Errorf("full name %q", c.FullName)
			}
		})
		if len(tests[c.Name].want) > 0 {
			failed++
		}
	}
	if want := (edgetest.Summary{Total: len(tests), Passed: len(tests) - failed, Failed: failed}); rep.Summary != want {
		t.Errorf("summary %+v, want %+v", rep.Summary, want)
	}
	if rep.OK() {
		t.Error("a report with failures is OK")
	}
}

// TestRejectionTiming checks where a rejection is seen: during the handshake
// in TLS 1.2, on the first read in TLS 1.3 (where a naive client sees
// success).
func TestRejectionTiming(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	e := f.start(t)
	for _, tc := range []struct {
		version string
		onRead  bool
	}{{"1.2", false}, {"1.3", true}} {
		t.Run(tc.version, func(t *testing.T) {
			var r edgetest.Runner
			rep := r.Run(context.Background(), []edgetest.Run{{Suite: f.suite("timing", manifest.TestCase{
				Name: "untrusted", ServerName: "api.bank.test", TLS: tlsVersion(tc.version), ClientCertificate: client("untrusted"),
				Expect: manifest.Expect{Handshake: "rejected", Alert: "unknown_ca"},
			}), Target: e.Target()}})
			c := rep.Suites[0].Cases[0]
			if !c.Passed || c.Observed.RejectedOnRead != tc.onRead {
				t.Fatalf("passed=%v rejectedOnRead=%v (want %v): %q", c.Passed, c.Observed.RejectedOnRead, tc.onRead, c.Messages())
			}
		})
	}
}

// TestFreshConnectionPerCase checks that every case dials its own
// connection and never resumes a session of an earlier case.
func TestFreshConnectionPerCase(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	e := f.start(t)
	var dials atomic.Int32
	r := edgetest.Runner{Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}}
	c := manifest.TestCase{ServerName: "api.bank.test", ClientCertificate: client("valid"), Expect: manifest.Expect{Status: 200}}
	a, b := c, c
	a.Name, b.Name = "first", "second"
	// The second case presents no certificate: a resumed session would let
	// it in with the first case's identity.
	b.ClientCertificate, b.Expect = nil, manifest.Expect{Alert: "certificate_required"}
	rep := r.Run(context.Background(), []edgetest.Run{{Suite: f.suite("fresh", a, b), Target: e.Target()}})
	if !rep.OK() {
		var buf bytes.Buffer
		edgetest.WriteText(&buf, rep)
		t.Fatal(buf.String())
	}
	if n := dials.Load(); n != 2 {
		t.Errorf("%d dials for 2 cases", n)
	}
}

// TestCannotRun covers cases that cannot run: they fail with an error that
// names what is wrong.
func TestCannotRun(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	e := f.start(t)
	ok := manifest.TestCase{Name: "ok", ServerName: "open.bank.test", Expect: manifest.Expect{Status: 200}}
	tests := map[string]struct {
		run  edgetest.Run
		want string
	}{
		"edge not verified": {run: edgetest.Run{Suite: func() edgetest.Suite {
			s := f.suite("s", ok)
			s.Spec.CAFile = "other-root.pem"
			return s
		}(), Target: e.Target()}, want: `error: the edge's certificate does not verify for "open.bank.test" (check caFile and serverName)`},
		"missing caFile": {run: edgetest.Run{Suite: func() edgetest.Suite {
			s := f.suite("s", ok)
			s.Spec.CAFile = "nowhere.pem"
			return s
		}(), Target: e.Target()}, want: "error: caFile: open "},
		"missing client certificate": {run: edgetest.Run{Suite: f.suite("s", manifest.TestCase{Name: "ok", ServerName: "api.bank.test", ClientCertificate: client("nobody"), Expect: manifest.Expect{Status: 200}}),
			Target: e.Target()}, want: "error: clientCertificate: open "},
		"unreachable edge": {run: edgetest.Run{Suite: f.suite("s", ok), Target: edgetest.Target{Addr: unusedAddr(t)}}, want: "error: cannot connect to the edge at 127.0.0.1:"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var r edgetest.Runner
			rep := r.Run(context.Background(), []edgetest.Run{tc.run})
			c := rep.Suites[0].Cases[0]
			if c.Passed || len(c.Messages()) != 1 || !strings.HasPrefix(c.Messages()[0], tc.want) {
				t.Fatalf("got %v %q, want a failure starting with %q", c.Passed, c.Messages(), tc.want)
			}
			if rep.OK() {
				t.Error("report OK")
			}
		})
	}
}

func unusedAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestTargetMode runs against an edge reached only by its address, as
// edgectl test --target does: origin expectations are refused up front,
// naming the case; the others run.
func TestTargetMode(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	e := f.start(t)
	target := edgetest.Target{Addr: e.Addr}
	s := f.suite("remote",
		manifest.TestCase{Name: "partner", ServerName: "api.bank.test", ClientCertificate: client("valid"), Expect: manifest.Expect{Status: 200, Headers: map[string]string{"Edge": "edgectl"}}},
		manifest.TestCase{Name: "no certificate", ServerName: "api.bank.test", Expect: manifest.Expect{Alert: "certificate_required"}},
		manifest.TestCase{Name: "identity at the origin", ServerName: "api.bank.test", ClientCertificate: client("valid"), Expect: manifest.Expect{OriginHeaders: map[string]string{"Client-Cert-Subject": "partner-app"}, OriginReached: ptr(true)}},
	)
	var r edgetest.Runner
	errs := r.Check([]edgetest.Run{{Suite: s, Target: target}})
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "remote/identity at the origin: originReached, originHeaders cannot be checked against a running edge ("+e.Addr+")") {
		t.Fatalf("Check = %v", errs)
	}
	r.Select = regexp.MustCompile("partner|no certificate")
	runs := []edgetest.Run{{Suite: s, Target: target}}
	if errs := r.Check(runs); len(errs) > 0 {
		t.Fatalf("Check of the selected cases = %v", errs)
	}
	rep := r.Run(context.Background(), runs)
	if !rep.OK() || rep.Summary.Total != 2 {
		var buf bytes.Buffer
		edgetest.WriteText(&buf, rep)
		t.Fatalf("report:\n%s", buf.String())
	}
	if c := rep.Suites[0].Cases[0]; c.Observed.Recorded || strings.Contains(rep.Suites[0].Target, "in-process") || rep.Suites[0].InProcess {
		t.Errorf("target mode recorded the origin: %+v", c.Observed)
	}
}

func TestCheck(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	s := f.suite("s",
		manifest.TestCase{Name: "alert", ServerName: "a.test", Expect: manifest.Expect{Alert: "certificate_missing"}},
		manifest.TestCase{Name: "regex", ServerName: "a.test", Expect: manifest.Expect{Headers: map[string]string{"X": "~("}}},
		manifest.TestCase{Name: "version", ServerName: "a.test", TLS: &manifest.TestTLS{MinVersion: "1.1"}, Expect: manifest.Expect{Status: 200}},
	)
	var r edgetest.Runner
	var got []string
	for _, err := range r.Check([]edgetest.Run{{Suite: s, Target: edgetest.Target{Addr: "127.0.0.1:1"}}}) {
		got = append(got, err.Error())
	}
	want := []string{
		`s/alert: unknown TLS alert "certificate_missing": use an RFC 8446 name such as certificate_required, bad_certificate, unknown_ca or certificate_expired`,
		"s/regex: expect.headers.X: invalid regular expression: error parsing regexp: missing closing ): `(`",
		`s/version: unknown TLS version "1.1": use 1.2 or 1.3`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestSelect(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	e := f.start(t)
	c := func(name string) manifest.TestCase {
		return manifest.TestCase{Name: name, ServerName: "open.bank.test", Expect: manifest.Expect{Status: 200}}
	}
	runs := []edgetest.Run{
		{Suite: f.suite("alpha", c("one"), c("two")), Target: e.Target()},
		{Suite: f.suite("beta", c("one"), c("three")), Target: e.Target()},
	}
	tests := map[string][]string{
		"":          {"alpha/one", "alpha/two", "beta/one", "beta/three"},
		"one":       {"alpha/one", "beta/one"},
		"^beta/":    {"beta/one", "beta/three"},
		"alpha/t":   {"alpha/two"},
		"^nothing$": nil,
	}
	for expr, want := range tests {
		t.Run(expr, func(t *testing.T) {
			r := edgetest.Runner{}
			if expr != "" {
				r.Select = regexp.MustCompile(expr)
			}
			var seen []string
			r.OnCase = func(_ *edgetest.SuiteResult, c *edgetest.CaseResult) { seen = append(seen, c.FullName) }
			if n := r.Selected(runs); n != len(want) {
				t.Errorf("Selected = %d, want %d", n, len(want))
			}
			rep := r.Run(context.Background(), runs)
			if diff := cmp.Diff(want, seen); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if rep.Summary.Total != len(want) {
				t.Errorf("total %d", rep.Summary.Total)
			}
		})
	}
}

// junit mirrors the JUnit XML schema as CI systems read it.
type junit struct {
	XMLName  xml.Name `xml:"testsuites"`
	Tests    int      `xml:"tests,attr"`
	Failures int      `xml:"failures,attr"`
	Errors   int      `xml:"errors,attr"`
	Suites   []struct {
		Name     string `xml:"name,attr"`
		Tests    int    `xml:"tests,attr"`
		Failures int    `xml:"failures,attr"`
		Errors   int    `xml:"errors,attr"`
		Time     string `xml:"time,attr"`
		Cases    []struct {
			Name      string `xml:"name,attr"`
			Classname string `xml:"classname,attr"`
			Time      string `xml:"time,attr"`
			Failure   *struct {
				Message string `xml:"message,attr"`
				Text    string `xml:",chardata"`
			} `xml:"failure"`
			Error *struct {
				Message string `xml:"message,attr"`
			} `xml:"error"`
		} `xml:"testcase"`
	} `xml:"testsuite"`
}

func TestJUnit(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	e := f.start(t)
	var r edgetest.Runner
	rep := r.Run(context.Background(), []edgetest.Run{
		{Suite: f.suite("first",
			manifest.TestCase{Name: "passes", ServerName: "open.bank.test", Expect: manifest.Expect{Status: 200}},
			manifest.TestCase{Name: `fails <with> "markup" & control` + "\x01", ServerName: "open.bank.test", Expect: manifest.Expect{Status: 204, Body: "<nope>"}},
		), Target: e.Target()},
		{Suite: f.suite("second",
			manifest.TestCase{Name: "cannot run", ServerName: "open.bank.test", Expect: manifest.Expect{Status: 200}},
		), Target: edgetest.Target{Addr: unusedAddr(t)}},
	})
	var buf bytes.Buffer
	if err := edgetest.WriteJUnit(&buf, rep); err != nil {
		t.Fatal(err)
	}
	var got junit
	if err := xml.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("invalid XML: %v\n%s", err, buf.String())
	}
	if got.Tests != 3 || got.Failures != 1 || got.Errors != 1 || len(got.Suites) != 2 {
		t.Fatalf("counts: %+v", got)
	}
	first := got.Suites[0]
	if first.Name != "first" || first.Tests != 2 || first.Failures != 1 || len(first.Cases) != 2 {
		t.Fatalf("first suite: %+v", first)
	}
	if c := first.Cases[0]; c.Name != "passes" || c.Classname != "first" || c.Failure != nil || c.Error != nil || c.Time == "" {
		t.Errorf("passing case: %+v", c)
	}
	fc := first.Cases[1]
	if fc.Failure == nil || fc.Failure.Message != "status: expected 204, got 200" || !strings.Contains(fc.Failure.Text, `body: expected a body containing "<nope>"`) {
		t.Errorf("failing case: %+v", fc)
	}
	if !strings.HasPrefix(fc.Name, `fails <with> "markup" & control`) {
		t.Errorf("name %q", fc.Name)
	}
	if c := got.Suites[1].Cases[0]; c.Error == nil || !strings.Contains(c.Error.Message, "cannot connect") || got.Suites[1].Errors != 1 {
		t.Errorf("error case: %+v", c)
	}
}
