package rules

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/edgectl/edgectl/pkg/manifest"
)

func ptr[T any](v T) *T { return &v }

// crit builds a criterion; an empty arg means no argument.
func crit(cond, variable, op string, arg ...string) manifest.Criterion {
	c := manifest.Criterion{Conditional: cond, Variable: variable, Operator: op}
	if len(arg) > 0 {
		c.Argument = &arg[0]
	}
	return c
}

// testRequest builds a request from 203.0.113.9:50000 to 192.0.2.1:443.
func testRequest(method, target string, headers ...string) *Request {
	h := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(headers); i += 2 {
		h.Header.Add(headers[i], headers[i+1])
	}
	r := fromHTTP(h, "api.bank.example")
	r.Scheme = "https"
	r.Conn = NewConn(netip.MustParseAddrPort("203.0.113.9:50000"), netip.MustParseAddrPort("192.0.2.1:443"), nil,
		&ClientCert{Verify: "SUCCESS", Status: StatusSuccess, SubjectCN: "partner-app", SubjectDN: "/C=BR/O=Partner Bank/CN=partner-app"})
	return r
}

// fromHTTP returns the engine's view of h with the given host, built as
// pkg/edge builds it: the request's own strings and header map.
func fromHTTP(h *http.Request, host string) *Request {
	return &Request{
		Method: h.Method, Target: h.RequestURI, Path: h.URL.Path, Query: h.URL.RawQuery, Proto: h.Proto,
		Header: HeaderMap(h.Header), Host: host,
	}
}

var testLists = map[string]*NetworkList{
	"partners": newNetworkList(netip.MustParsePrefix("203.0.113.0/24"), netip.MustParsePrefix("2001:db8::/32")),
	"office":   newNetworkList(netip.MustParsePrefix("10.0.0.0/8")),
}

func TestCriteriaCompileErrors(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		firewall bool
		phase    string
		groups   [][]manifest.Criterion
		want     []FieldError
	}{
		"unknown firewall variable with suggestion": {
			firewall: true,
			groups:   [][]manifest.Criterion{{crit("", "hots", "is_equal", "a")}},
			want:     []FieldError{{Path: "spec.rules[0].criteria[0][0].variable", Message: `unknown firewall variable "hots"; did you mean "host"?`}},
		},
		"unknown firewall variable in ${} spelling": {
			firewall: true,
			groups:   [][]manifest.Criterion{{crit("", "${client_certificate_validaton}", "is_equal", "true")}},
			want:     []FieldError{{Path: "spec.rules[0].criteria[0][0].variable", Message: `unknown firewall variable "${client_certificate_validaton}"; did you mean "client_certificate_validation"?`}},
		},
		"unknown firewall variable without suggestion": {
			firewall: true,
			groups:   [][]manifest.Criterion{{crit("", "zzzzzzzzzzzz", "exists")}},
			want:     []FieldError{{Path: "spec.rules[0].criteria[0][0].variable", Message: `unknown firewall variable "zzzzzzzzzzzz"`}},
		},
		"application variable in firewall": {
			firewall: true,
			groups:   [][]manifest.Criterion{{crit("", "${ssl_client_verify}", "exists")}},
			want:     []FieldError{{Path: "spec.rules[0].criteria[0][0].variable", Message: `unknown firewall variable "${ssl_client_verify}"; it is an application variable, which the firewall does not have`}},
		},
		"unknown application variable with suggestion": {
			phase:  "request",
			groups: [][]manifest.Criterion{{crit("", "${ssl_client_fingerprnt}", "exists")}},
			want:   []FieldError{{Path: "spec.rules[0].criteria[0][0].variable", Message: `unknown variable "${ssl_client_fingerprnt}"; did you mean "${ssl_client_fingerprint}"?`}},
		},
		"misspelled header prefix": {
			phase:  "request",
			groups: [][]manifest.Criterion{{crit("", "${htp_user_agent}", "exists")}},
			want:   []FieldError{{Path: "spec.rules[0].criteria[0][0].variable", Message: `unknown variable "${htp_user_agent}"; did you mean "${http_user_agent}"?`}},
		},
		"bare application variable": {
			phase:  "request",
			groups: [][]manifest.Criterion{{crit("", "host", "is_equal", "a")}},
			want:   []FieldError{{Path: "spec.rules[0].criteria[0][0].variable", Message: `application variables are written "${host}", not "host"`}},
		},
		"two variables in a criterion": {
			phase:  "request",
			groups: [][]manifest.Criterion{{crit("", "${host}${uri}", "is_equal", "a")}},
			want:   []FieldError{{Path: "spec.rules[0].criteria[0][0].variable", Message: `application criteria compare one variable written ${name}, not "${host}${uri}"`}},
		},
		"unterminated variable": {
			phase:  "request",
			groups: [][]manifest.Criterion{{crit("", "${host", "is_equal", "a")}},
			want:   []FieldError{{Path: "spec.rules[0].criteria[0][0].variable", Message: `unterminated "${" in variable "${host"`}},
		},
		"response variable in request phase": {
			phase:  "request",
			groups: [][]manifest.Criterion{{crit("", "${upstream_status}", "is_equal", "500")}},
			want:   []FieldError{{Path: "spec.rules[0].criteria[0][0].variable", Message: `variable "${upstream_status}" is only available in the response phase`}},
		},
		"prefix without name": {
			phase:  "request",
			groups: [][]manifest.Criterion{{crit("", "${http_}", "exists")}},
			want:   []FieldError{{Path: "spec.rules[0].criteria[0][0].variable", Message: `variable "${http_}" lacks a name after "http_", as in "${http_x_example}"`}},
		},
		"unknown operator": {
			firewall: true,
			groups:   [][]manifest.Criterion{{crit("", "host", "equals", "a")}},
			want:     []FieldError{{Path: "spec.rules[0].criteria[0][0].operator", Message: `unknown operator "equals"; did you mean "is_equal"?`}},
		},
		"exists with argument": {
			firewall: true,
			groups:   [][]manifest.Criterion{{crit("", "header_origin", "exists", "x")}},
			want:     []FieldError{{Path: "spec.rules[0].criteria[0][0].argument", Message: "operator exists takes no argument"}},
		},
		"does_not_exist with argument": {
			firewall: true,
			groups:   [][]manifest.Criterion{{crit("", "header_origin", "does_not_exist", "")}},
			want:     []FieldError{{Path: "spec.rules[0].criteria[0][0].argument", Message: "operator does_not_exist takes no argument"}},
		},
		"missing argument": {
			firewall: true,
			groups:   [][]manifest.Criterion{{crit("", "host", "starts_with")}},
			want:     []FieldError{{Path: "spec.rules[0].criteria[0][0]", Message: "operator starts_with requires an argument"}},
		},
		"bad regexp": {
			firewall: true,
			groups:   [][]manifest.Criterion{{crit("", "request_uri", "matches", "^/(a")}},
			want:     []FieldError{{Path: "spec.rules[0].criteria[0][0].argument", Message: "invalid regular expression \"^/(a\": missing closing ): `^/(a`"}},
		},
		"unknown list": {
			firewall: true,
			groups:   [][]manifest.Criterion{{crit("", "network", "is_in_list", "partner")}},
			want:     []FieldError{{Path: "spec.rules[0].criteria[0][0].argument", Message: `unknown NetworkList "partner"; did you mean "partners"?`}},
		},
		"list with a non-address variable (firewall)": {
			firewall: true,
			groups:   [][]manifest.Criterion{{crit("", "host", "is_not_in_list", "partners")}},
			want:     []FieldError{{Path: "spec.rules[0].criteria[0][0].operator", Message: `operator is_not_in_list tests the client address: use it with the variable network, not "host"`}},
		},
		"list with a non-address variable (application)": {
			phase:  "request",
			groups: [][]manifest.Criterion{{crit("", "${http_x_real_ip}", "is_in_list", "partners")}},
			want:   []FieldError{{Path: "spec.rules[0].criteria[0][0].operator", Message: `operator is_in_list tests the client address: use it with the variable ${remote_addr}, not "${http_x_real_ip}"`}},
		},
		"and on the first entry": {
			firewall: true,
			groups:   [][]manifest.Criterion{{crit("and", "host", "exists")}},
			want:     []FieldError{{Path: "spec.rules[0].criteria[0][0].conditional", Message: `the first comparison of a group takes conditional if (or none), not "and"`}},
		},
		"if on a later entry": {
			firewall: true,
			groups:   [][]manifest.Criterion{{crit("if", "host", "exists"), crit("if", "scheme", "exists")}},
			want:     []FieldError{{Path: "spec.rules[0].criteria[0][1].conditional", Message: `conditional "if" is only for the first comparison of a group; use and or or`}},
		},
		"missing conditional on a later entry": {
			firewall: true,
			groups:   [][]manifest.Criterion{{crit("", "host", "exists")}, {crit("", "host", "exists"), crit("", "scheme", "exists")}},
			want:     []FieldError{{Path: "spec.rules[0].criteria[1][1]", Message: "missing conditional: every comparison after the first of a group needs conditional and or or"}},
		},
		"unknown conditional": {
			firewall: true,
			groups:   [][]manifest.Criterion{{crit("", "host", "exists"), crit("xor", "scheme", "exists")}},
			want:     []FieldError{{Path: "spec.rules[0].criteria[0][1].conditional", Message: `unknown conditional "xor"; use if, and or or`}},
		},
		"empty group": {
			firewall: true,
			groups:   [][]manifest.Criterion{{}},
			want:     []FieldError{{Path: "spec.rules[0].criteria[0]", Message: "empty criteria group: a group needs at least one comparison"}},
		},
		"every problem at once": {
			firewall: true,
			groups:   [][]manifest.Criterion{{crit("or", "hots", "matches", "(")}},
			want: []FieldError{
				{Path: "spec.rules[0].criteria[0][0].conditional", Message: `the first comparison of a group takes conditional if (or none), not "or"`},
				{Path: "spec.rules[0].criteria[0][0].variable", Message: `unknown firewall variable "hots"; did you mean "host"?`},
				{Path: "spec.rules[0].criteria[0][0].argument", Message: "invalid regular expression \"(\": missing closing ): `(`"},
			},
		},
		"valid firewall criteria": {
			firewall: true,
			groups: [][]manifest.Criterion{{
				crit("if", "${host}", "is_equal", "a"), crit("and", "network", "is_in_list", "partners"),
				crit("or", "ssl_client_serial", "starts_with", "01"), crit("and", "header_user_agent", "does_not_match", "curl"),
			}},
		},
		"valid application criteria": {
			phase: "response",
			groups: [][]manifest.Criterion{{
				crit("", "${remote_addr}", "is_not_in_list", "office"), crit("or", "${sent_http_content_type}", "exists"),
				crit("and", "${upstream_http_x_a}", "does_not_exist"), crit("or", "${cookie_session}", "does_not_start_with", "x"),
			}},
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			_, got := compileCriteria("spec.rules[0]", tt.groups, testLists, engine{firewall: tt.firewall, phase: tt.phase})
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCriteriaPrecedence(t *testing.T) {
	t.Parallel()
	// a or b and c == a or (b and c); groups are ANDed.
	is := func(v bool) string {
		if v {
			return "yes"
		}
		return "no"
	}
	for _, a := range []bool{false, true} {
		for _, b := range []bool{false, true} {
			for _, c := range []bool{false, true} {
				for _, d := range []bool{false, true} {
					name := fmt.Sprintf("a=%v b=%v c=%v d=%v", a, b, c, d)
					t.Run(name, func(t *testing.T) {
						groups := [][]manifest.Criterion{
							{
								crit("", "${http_a}", "is_equal", "yes"),
								crit("or", "${http_b}", "is_equal", "yes"),
								crit("and", "${http_c}", "is_equal", "yes"),
							},
							{crit("", "${http_d}", "is_equal", "yes")},
						}
						cr, errs := compileCriteria("spec.rules[0]", groups, nil, engine{phase: "request"})
						if errs != nil {
							t.Fatal(errs)
						}
						r := testRequest("GET", "/", "A", is(a), "B", is(b), "C", is(c), "D", is(d))
						want := (a || b && c) && d
						if got := cr.match(r, nil); got != want {
							t.Errorf("match = %v, want %v", got, want)
						}
					})
				}
			}
		}
	}
	t.Run("and then or", func(t *testing.T) {
		// a and b or c == (a and b) or c
		groups := [][]manifest.Criterion{{
			crit("", "${http_a}", "exists"), crit("and", "${http_b}", "exists"), crit("or", "${http_c}", "exists"),
		}}
		cr, _ := compileCriteria("r", groups, nil, engine{phase: "request"})
		got := map[string]bool{
			"c only":  cr.match(testRequest("GET", "/", "C", "1"), nil),
			"a only":  cr.match(testRequest("GET", "/", "A", "1"), nil),
			"a and b": cr.match(testRequest("GET", "/", "A", "1", "B", "1"), nil),
		}
		want := map[string]bool{"c only": true, "a only": false, "a and b": true}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	})
	t.Run("no criteria", func(t *testing.T) {
		if !criteria(nil).match(testRequest("GET", "/"), nil) {
			t.Error("no criteria must match")
		}
	})
}

func TestOperators(t *testing.T) {
	t.Parallel()
	r := testRequest("GET", "/accounts/42?page=2&Sort=asc", "User-Agent", "curl/8.0", "X-Empty", "", "Cookie", "a=1; session=\"abc\"")
	tests := map[string]struct {
		firewall bool
		c        manifest.Criterion
		want     bool
	}{
		"is_equal":                       {c: crit("", "${uri}", "is_equal", "/accounts/42"), want: true},
		"is_equal is case-sensitive":     {c: crit("", "${uri}", "is_equal", "/Accounts/42")},
		"is_equal on host ignores case":  {c: crit("", "${host}", "is_equal", "API.Bank.Example"), want: true},
		"is_not_equal":                   {c: crit("", "${request_method}", "is_not_equal", "POST"), want: true},
		"is_not_equal false":             {c: crit("", "${request_method}", "is_not_equal", "GET")},
		"starts_with":                    {c: crit("", "${request_uri}", "starts_with", "/accounts/42?page"), want: true},
		"starts_with false":              {c: crit("", "${uri}", "starts_with", "/payments")},
		"does_not_start_with":            {c: crit("", "${uri}", "does_not_start_with", "/payments"), want: true},
		"does_not_start_with false":      {c: crit("", "${uri}", "does_not_start_with", "/acc")},
		"matches":                        {c: crit("", "${uri}", "matches", `^/accounts/\d+$`), want: true},
		"matches false":                  {c: crit("", "${uri}", "matches", `^/accounts/[a-z]+$`)},
		"matches on host ignores case":   {c: crit("", "${host}", "matches", `^API\.`), want: true},
		"does_not_match":                 {c: crit("", "${http_user_agent}", "does_not_match", `^Mozilla`), want: true},
		"does_not_match false":           {c: crit("", "${http_user_agent}", "does_not_match", `^curl/`)},
		"exists header":                  {c: crit("", "${http_user_agent}", "exists"), want: true},
		"exists empty header is present": {c: crit("", "${http_x_empty}", "exists"), want: true},
		"exists absent header":           {c: crit("", "${http_x_absent}", "exists")},
		"exists empty value":             {c: crit("", "${ssl_client_fingerprint}", "exists")},
		"exists value":                   {c: crit("", "${ssl_client_s_dn_parsed}", "exists"), want: true},
		"does_not_exist":                 {c: crit("", "${http_x_absent}", "does_not_exist"), want: true},
		"does_not_exist false":           {c: crit("", "${http_user_agent}", "does_not_exist")},
		"is_in_list":                     {c: crit("", "${remote_addr}", "is_in_list", "partners"), want: true},
		"is_in_list false":               {c: crit("", "${remote_addr}", "is_in_list", "office")},
		"is_not_in_list":                 {c: crit("", "${remote_addr}", "is_not_in_list", "office"), want: true},
		"is_not_in_list false":           {c: crit("", "${remote_addr}", "is_not_in_list", "partners")},
		"arg is case-insensitive":        {c: crit("", "${arg_sort}", "is_equal", "asc"), want: true},
		"args":                           {c: crit("", "${args}", "is_equal", "page=2&Sort=asc"), want: true},
		"cookie unquoted":                {c: crit("", "${cookie_session}", "is_equal", "abc"), want: true},
		"firewall network in list":       {firewall: true, c: crit("", "network", "is_in_list", "partners"), want: true},
		"firewall network equal":         {firewall: true, c: crit("", "network", "is_equal", "203.0.113.9"), want: true},
		"firewall request_uri has no query": {
			firewall: true, c: crit("", "request_uri", "is_equal", "/accounts/42"), want: true,
		},
		"firewall validation":     {firewall: true, c: crit("", "client_certificate_validation", "is_equal", "true"), want: true},
		"firewall status":         {firewall: true, c: crit("", "ssl_verification_status", "is_equal", "SUCCESS"), want: true},
		"firewall header":         {firewall: true, c: crit("", "header_user_agent", "starts_with", "curl"), want: true},
		"firewall pinning absent": {firewall: true, c: crit("", "ssl_client_fingerprint", "exists")},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			cr, errs := compileCriteria("r", [][]manifest.Criterion{{tt.c}}, testLists, engine{firewall: tt.firewall, phase: "request"})
			if errs != nil {
				t.Fatal(errs)
			}
			if got := cr.match(r, nil); got != tt.want {
				t.Errorf("match = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestNoConnection(t *testing.T) {
	t.Parallel()
	// A request without connection facts reads as no certificate.
	r := fromHTTP(httptest.NewRequest("GET", "/", nil), "h")
	cr, _ := compileCriteria("r", [][]manifest.Criterion{{
		crit("", "ssl_verification_status", "is_equal", StatusMissingCertificate),
		crit("and", "client_certificate_validation", "is_equal", "false"),
		crit("and", "network", "is_not_in_list", "partners"),
	}}, testLists, engine{firewall: true})
	if !cr.match(r, nil) {
		t.Error("want match")
	}
}

// benchApplication has n request rules of two comparisons each; none
// matches the benchmark request but the last.
func benchApplication(b *testing.B, n int) *Application {
	spec := &manifest.ApplicationSpec{}
	for i := range n - 1 {
		spec.Rules = append(spec.Rules, manifest.AppRule{
			Name: fmt.Sprintf("rule %d", i),
			Criteria: [][]manifest.Criterion{{
				crit("", "${host}", "is_equal", "api.bank.example"),
				crit("and", "${uri}", "starts_with", fmt.Sprintf("/service-%d/", i)),
				crit("or", "${http_x_tenant}", "is_equal", fmt.Sprintf("tenant-%d", i)),
			}, {
				crit("", "${ssl_client_verify}", "is_equal", "SUCCESS"),
			}},
			Behaviors: []manifest.AppBehavior{{AddRequestHeader: "X-Service: " + fmt.Sprint(i)}},
		})
	}
	spec.Rules = append(spec.Rules, manifest.AppRule{
		Name:      "identity",
		Criteria:  [][]manifest.Criterion{{crit("", "${ssl_client_verify}", "is_equal", "SUCCESS")}},
		Behaviors: []manifest.AppBehavior{{AddRequestHeader: "Client-Cert-Subject: ${ssl_client_s_dn_parsed}"}},
	})
	a, errs := CompileApplication(spec, nil)
	if errs != nil {
		b.Fatal(errs)
	}
	return a
}

func BenchmarkApplication200Rules(b *testing.B) {
	benchApplication200Rules(b, benchApplication(b, 200))
}

// BenchmarkApplication200RulesUnindexed is BenchmarkApplication200Rules
// without the rule index: the worst case, where every rule's criteria are
// evaluated.
func BenchmarkApplication200RulesUnindexed(b *testing.B) {
	a := benchApplication(b, 200)
	if a.requestIndex == nil {
		b.Fatal("the benchmark application is not indexed")
	}
	a.requestIndex = nil
	benchApplication200Rules(b, a)
}

func benchApplication200Rules(b *testing.B, a *Application) {
	r := testRequest("GET", "/accounts/42?page=2", "X-Tenant", "nobody", "User-Agent", "bench")
	var out RequestActions
	b.ReportAllocs()
	for b.Loop() {
		a.EvaluateRequest(r, &out)
	}
	if len(out.Add) != 1 {
		b.Fatalf("add = %v", out.Add)
	}
}

func BenchmarkIsEqualLiteral(b *testing.B) {
	cr, errs := compileCriteria("r", [][]manifest.Criterion{{crit("", "${http_x_tenant}", "is_equal", "tenant-7")}}, nil, engine{phase: "request"})
	if errs != nil {
		b.Fatal(errs)
	}
	r := testRequest("GET", "/", "X-Tenant", "tenant-7")
	b.ReportAllocs()
	for b.Loop() {
		if !cr.match(r, nil) {
			b.Fatal("no match")
		}
	}
}

var _ = http.MethodGet

// BenchmarkApplication200RoutingRules is the common shape of a large rule
// set: each rule selects a path prefix, so most rules fail on their first
// comparison.
func BenchmarkApplication200RoutingRules(b *testing.B) {
	benchApplication200RoutingRules(b, routingApplication(b, 200))
}

// BenchmarkApplication200RoutingRulesUnindexed is
// BenchmarkApplication200RoutingRules without the rule index.
func BenchmarkApplication200RoutingRulesUnindexed(b *testing.B) {
	a := routingApplication(b, 200)
	if a.requestIndex == nil {
		b.Fatal("the benchmark application is not indexed")
	}
	a.requestIndex = nil
	benchApplication200RoutingRules(b, a)
}

// routingApplication has n request rules, each for one path prefix and GET.
func routingApplication(b *testing.B, n int) *Application {
	spec := &manifest.ApplicationSpec{}
	for i := range n {
		spec.Rules = append(spec.Rules, manifest.AppRule{
			Name: fmt.Sprintf("rule %d", i),
			Criteria: [][]manifest.Criterion{{
				crit("", "${uri}", "starts_with", fmt.Sprintf("/service-%d/", i)),
				crit("and", "${request_method}", "is_equal", "GET"),
			}},
			Behaviors: []manifest.AppBehavior{{AddRequestHeader: fmt.Sprintf("X-Service: %d", i)}},
		})
	}
	a, errs := CompileApplication(spec, nil)
	if errs != nil {
		b.Fatal(errs)
	}
	return a
}

func benchApplication200RoutingRules(b *testing.B, a *Application) {
	r := testRequest("GET", "/service-199/x")
	var out RequestActions
	b.ReportAllocs()
	for b.Loop() {
		a.EvaluateRequest(r, &out)
	}
	if len(out.Add) != 1 {
		b.Fatalf("add = %v", out.Add)
	}
}

// spell returns the application spelling of a compiled variable, such as
// "uri" or "http_X-Tenant" (with the canonical header key).
func spell(v variable) string {
	for _, p := range appPrefixes {
		if p.kind == v.kind {
			return p.prefix + v.name
		}
	}
	best := ""
	for n, k := range appVars {
		if k == v.kind && (best == "" || n < best) {
			best = n
		}
	}
	if best == "" {
		return fmt.Sprintf("kind %d", v.kind)
	}
	return best
}

func opName(op opKind) string {
	for n, k := range operators {
		if k == op {
			return n
		}
	}
	return "?"
}

// describeCriteria shows compiled criteria as "variable op arg" per
// comparison, with "or" before the comparisons that start a conjunction
// and "|" before those that start a group after the first.
func describeCriteria(cr criteria) []string {
	var out []string
	for i := range cr {
		c := &cr[i]
		s := fmt.Sprintf("%s %s %q", spell(c.x.v), opName(c.op), c.arg)
		switch {
		case c.group && i > 0:
			s = "| " + s
		case c.or:
			s = "or " + s
		}
		out = append(out, s)
	}
	return out
}

func TestOrderGroup(t *testing.T) {
	t.Parallel()
	// Spelled as compiled comparisons, to compare with describeCriteria.
	const (
		uri   = `uri is_equal "/a"`
		re    = `uri matches "^/a"`
		list  = `remote_addr is_in_list "office"`
		req   = `request is_equal "GET / HTTP/1.1"`
		hdr   = `http_X-A exists ""`
		host  = `host is_equal "a"`
		nhost = `host is_not_equal "b"`
	)
	tests := map[string]struct {
		groups [][]manifest.Criterion
		want   []string
	}{
		"cheap comparisons first in a conjunction": {
			groups: [][]manifest.Criterion{{
				crit("", "${uri}", "matches", "^/a"), crit("and", "${remote_addr}", "is_in_list", "office"), crit("and", "${uri}", "is_equal", "/a"),
			}},
			want: []string{uri, list, re},
		},
		"order kept among equals": {
			groups: [][]manifest.Criterion{{
				crit("", "${host}", "is_equal", "a"), crit("and", "${http_x_a}", "exists"), crit("and", "${host}", "is_not_equal", "b"),
			}},
			want: []string{host, hdr, nhost},
		},
		"never across or": {
			groups: [][]manifest.Criterion{{
				crit("", "${uri}", "matches", "^/a"), crit("or", "${uri}", "is_equal", "/a"), crit("and", "${remote_addr}", "is_in_list", "office"),
			}},
			want: []string{re, "or " + uri, list},
		},
		"the or moves with the conjunction's first comparison": {
			groups: [][]manifest.Criterion{{
				crit("", "${host}", "is_equal", "a"), crit("or", "${uri}", "matches", "^/a"), crit("and", "${uri}", "is_equal", "/a"),
			}},
			want: []string{host, "or " + uri, re},
		},
		"never across groups": {
			groups: [][]manifest.Criterion{
				{crit("", "${uri}", "matches", "^/a")},
				{crit("", "${request}", "is_equal", "GET / HTTP/1.1"), crit("and", "${host}", "is_equal", "a")},
			},
			want: []string{re, "| " + host, req},
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			cr, errs := compileCriteria("r", tt.groups, testLists, engine{phase: "request"})
			if errs != nil {
				t.Fatal(errs)
			}
			if diff := cmp.Diff(tt.want, describeCriteria(cr)); diff != "" {
				t.Errorf("order (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCriteriaLinks(t *testing.T) {
	t.Parallel()
	type link struct{ OnTrue, OnFalse int32 }
	e := func(v string) manifest.Criterion { return crit("", "${http_"+v+"}", "exists") }
	and := func(v string) manifest.Criterion { return crit("and", "${http_"+v+"}", "exists") }
	or := func(v string) manifest.Criterion { return crit("or", "${http_"+v+"}", "exists") }
	tests := map[string]struct {
		groups [][]manifest.Criterion
		want   []link
	}{
		"one comparison": {
			groups: [][]manifest.Criterion{{e("a")}},
			want:   []link{{jMatch, jFail}},
		},
		"a and b": {
			groups: [][]manifest.Criterion{{e("a"), and("b")}},
			want:   []link{{1, jFail}, {jMatch, jFail}},
		},
		"a or b and c": {
			groups: [][]manifest.Criterion{{e("a"), or("b"), and("c")}},
			want:   []link{{jMatch, 1}, {2, jFail}, {jMatch, jFail}},
		},
		"a and b or c": {
			groups: [][]manifest.Criterion{{e("a"), and("b"), or("c")}},
			want:   []link{{1, 2}, {jMatch, 2}, {jMatch, jFail}},
		},
		"groups: (a or b) and (c and d or e)": {
			groups: [][]manifest.Criterion{{e("a"), or("b")}, {e("c"), and("d"), or("e")}},
			want:   []link{{2, 1}, {2, jFail}, {3, 4}, {jMatch, 4}, {jMatch, jFail}},
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			cr, errs := compileCriteria("r", tt.groups, nil, engine{phase: "request"})
			if errs != nil {
				t.Fatal(errs)
			}
			var got []link
			for _, c := range cr {
				got = append(got, link{c.onTrue, c.onFalse})
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("links (-want +got):\n%s", diff)
			}
		})
	}
}

// refMatch evaluates criteria as the manifest defines them, one comparison
// at a time and in the order written: groups ANDed, and inside a group "a
// or b and c" is "a or (b and c)". It shares no code with the compiled
// links, the ordering of comparisons or the index, and so checks them.
func refMatch(t testing.TB, groups [][]manifest.Criterion, r *Request, resp *ResponseView, eng engine) bool {
	t.Helper()
	for _, g := range groups {
		anyConj, conj := false, true
		for i, c := range g {
			if i > 0 && c.Conditional == "or" {
				anyConj, conj = anyConj || conj, true
			}
			c.Conditional = ""
			one, errs := compileCriteria("r", [][]manifest.Criterion{{c}}, testLists, eng)
			if errs != nil {
				t.Fatal(errs)
			}
			conj = conj && one.match(r, resp)
		}
		if !anyConj && !conj {
			return false
		}
	}
	return true
}

// criteriaGen draws criteria and requests from a small vocabulary, so that
// comparisons often hold: is_equal and starts_with on the variables the
// index covers, case-insensitive hosts, regular expressions, exists,
// negations and network lists.
type criteriaGen struct{ rnd *rand.Rand }

var (
	genVars  = []string{"${host}", "${uri}", "${http_x_a}", "${arg_q}", "${request_method}", "${remote_addr}"}
	genOps   = []string{"is_equal", "starts_with", "is_equal", "starts_with", "is_not_equal", "does_not_start_with", "matches", "does_not_match", "exists", "does_not_exist"}
	genArgs  = []string{"", "a", "ab", "abc", "A", "AB", "/", "/a", "/a/", "/a/b", "/b", "x.example", "X.Example", "GET", "POST", "^a", "b$", "(?i)^/A"}
	genHosts = []string{"x.example", "a.example", "ab.example", "a"}
	genVals  = []string{"", "a", "ab", "abc", "A", "b", "/a", "/a/b", "x.example"}
	genPaths = []string{"/", "/a", "/a/", "/a/b", "/ab", "/b", "/A/b"}
)

func (g criteriaGen) pick(s []string) string { return s[g.rnd.IntN(len(s))] }

func (g criteriaGen) criterion(cond string) manifest.Criterion {
	v, op := g.pick(genVars), g.pick(genOps)
	switch {
	case op == "exists" || op == "does_not_exist":
		return crit(cond, v, op)
	case v == "${remote_addr}" && g.rnd.IntN(2) == 0:
		op = "is_in_list"
		if g.rnd.IntN(2) == 0 {
			op = "is_not_in_list"
		}
		return crit(cond, v, op, g.pick([]string{"partners", "office"}))
	}
	return crit(cond, v, op, g.pick(genArgs))
}

// criteria returns up to three groups of up to four comparisons.
func (g criteriaGen) criteria() [][]manifest.Criterion {
	var out [][]manifest.Criterion
	for range g.rnd.IntN(4) {
		var grp []manifest.Criterion
		for i := range 1 + g.rnd.IntN(4) {
			cond := ""
			if i > 0 {
				cond = g.pick([]string{"and", "or"})
			}
			grp = append(grp, g.criterion(cond))
		}
		out = append(out, grp)
	}
	return out
}

func (g criteriaGen) request() *Request {
	target := g.pick(genPaths)
	if q := g.pick(genVals); q != "" || g.rnd.IntN(2) == 0 {
		target += "?q=" + q
	}
	var headers []string
	if g.rnd.IntN(3) > 0 {
		headers = append(headers, "X-A", g.pick(genVals))
	}
	r := testRequest(g.pick([]string{"GET", "POST"}), target, headers...)
	r.Host = g.pick(genHosts)
	if g.rnd.IntN(4) == 0 {
		r.Conn = nil
	}
	return r
}

func TestCriteriaMatchesReference(t *testing.T) {
	t.Parallel()
	g := criteriaGen{rand.New(rand.NewPCG(1, 2))}
	for i := range 3000 {
		groups := g.criteria()
		cr, errs := compileCriteria("r", groups, testLists, engine{phase: "request"})
		if errs != nil {
			t.Fatal(errs)
		}
		r := g.request()
		if got, want := cr.match(r, nil), refMatch(t, groups, r, nil, engine{phase: "request"}); got != want {
			t.Fatalf("case %d: match = %v, want %v for host %q, %s %s, X-A %q, criteria %+v",
				i, got, want, r.Host, r.Method, r.Target, http.Header(r.Header).Get("X-A"), groups)
		}
	}
}

// indexView is a ruleIndex in comparable form.
type indexView struct {
	Always []int32
	Vars   map[string]varView
}

type varView struct {
	Eq, Prefix map[string][]int32
	Lens       []int
}

func viewIndex(ix *ruleIndex) *indexView {
	if ix == nil {
		return nil
	}
	out := &indexView{Always: ix.always, Vars: map[string]varView{}}
	for _, x := range ix.vars {
		vv := varView{Lens: x.lens}
		for k, e := range x.keys {
			if len(e.eq) > 0 {
				if vv.Eq == nil {
					vv.Eq = map[string][]int32{}
				}
				vv.Eq[k] = e.eq
			}
			if len(e.prefix) > 0 {
				if vv.Prefix == nil {
					vv.Prefix = map[string][]int32{}
				}
				vv.Prefix[k] = e.prefix
			}
		}
		out.Vars[spell(x.v)] = vv
	}
	return out
}

func compileAll(t testing.TB, rules [][][]manifest.Criterion) []criteria {
	t.Helper()
	all := make([]criteria, len(rules))
	for i, groups := range rules {
		cr, errs := compileCriteria(fmt.Sprintf("spec.rules[%d]", i), groups, testLists, engine{phase: "request"})
		if errs != nil {
			t.Fatal(errs)
		}
		all[i] = cr
	}
	return all
}

func TestBuildIndex(t *testing.T) {
	t.Parallel()
	const host, uri, method, hdr = "host", "uri", "request_method", "http_X-A"
	one := func(c ...manifest.Criterion) [][]manifest.Criterion { return [][]manifest.Criterion{c} }
	uriIs := func(p string) [][]manifest.Criterion { return one(crit("", "${uri}", "starts_with", p)) }
	tests := map[string]struct {
		rules    [][][]manifest.Criterion
		minRules int
		want     *indexView
	}{
		"equality on host, lowercased at compile time": {
			rules: [][][]manifest.Criterion{one(crit("", "${host}", "is_equal", "API.Example")), one(crit("", "${host}", "is_equal", "b.example"))},
			want: &indexView{Vars: map[string]varView{
				host: {Eq: map[string][]int32{"api.example": {0}, "b.example": {1}}},
			}},
		},
		"prefixes by length": {
			rules: [][][]manifest.Criterion{uriIs("/a/"), uriIs("/bb/"), uriIs("/a/"), uriIs("/c/")},
			want: &indexView{Vars: map[string]varView{
				uri: {Prefix: map[string][]int32{"/a/": {0, 2}, "/bb/": {1}, "/c/": {3}}, Lens: []int{3, 4}},
			}},
		},
		"the most selective comparison of a conjunction": {
			rules: [][][]manifest.Criterion{
				one(crit("", "${request_method}", "is_equal", "GET"), crit("and", "${uri}", "starts_with", "/a")),
				one(crit("", "${request_method}", "is_equal", "GET"), crit("and", "${uri}", "starts_with", "/b")),
				one(crit("", "${request_method}", "is_equal", "GET"), crit("and", "${uri}", "is_equal", "/a")),
			},
			want: &indexView{Vars: map[string]varView{
				uri: {Eq: map[string][]int32{"/a": {2}}, Prefix: map[string][]int32{"/a": {0}, "/b": {1}}, Lens: []int{2}},
			}},
		},
		"one comparison per conjunction of an or": {
			rules: [][][]manifest.Criterion{
				one(crit("", "${uri}", "starts_with", "/a"), crit("or", "${http_x_a}", "is_equal", "t"), crit("and", "${host}", "is_equal", "h")),
				uriIs("/b"),
			},
			want: &indexView{Vars: map[string]varView{
				uri: {Prefix: map[string][]int32{"/a": {0}, "/b": {1}}, Lens: []int{2}},
				hdr: {Eq: map[string][]int32{"t": {0}}},
			}},
		},
		"an or with a conjunction the index cannot evaluate": {
			rules: [][][]manifest.Criterion{
				one(crit("", "${uri}", "starts_with", "/a"), crit("or", "${http_x_a}", "matches", "t")),
				uriIs("/b"),
			},
			want: &indexView{Always: []int32{0}, Vars: map[string]varView{
				uri: {Prefix: map[string][]int32{"/b": {1}}, Lens: []int{2}},
			}},
		},
		"the most selective group": {
			rules: [][][]manifest.Criterion{
				{{crit("", "${request_method}", "is_equal", "GET")}, {crit("", "${uri}", "is_equal", "/a")}},
				{{crit("", "${request_method}", "is_equal", "GET")}, {crit("", "${uri}", "is_equal", "/b")}},
				{{crit("", "${request_method}", "is_equal", "GET")}, {crit("", "${uri}", "matches", "/c")}},
				{{crit("", "${request_method}", "is_equal", "PUT")}},
			},
			want: &indexView{Always: []int32{2}, Vars: map[string]varView{
				uri:    {Eq: map[string][]int32{"/a": {0}, "/b": {1}}},
				method: {Eq: map[string][]int32{"PUT": {3}}},
			}},
		},
		"comparisons the index cannot evaluate": {
			rules: [][][]manifest.Criterion{
				one(crit("", "${uri}", "is_not_equal", "/a")),
				one(crit("", "${uri}", "does_not_start_with", "/a")),
				one(crit("", "${http_x_a}", "exists")),
				one(crit("", "${http_x_a}", "does_not_exist")),
				one(crit("", "${uri}", "matches", "^/a")),
				one(crit("", "${remote_addr}", "is_in_list", "office")),
				one(crit("", "${request}", "is_equal", "GET / HTTP/1.1")),
				one(crit("", "${ssl_client_v_remain}", "is_equal", "30")),
				nil,
				uriIs("/z"),
			},
			want: &indexView{Always: []int32{0, 1, 2, 3, 4, 5, 6, 7, 8}, Vars: map[string]varView{
				uri: {Prefix: map[string][]int32{"/z": {9}}, Lens: []int{2}},
			}},
		},
		"a comparison most rules share selects nothing": {
			rules: [][][]manifest.Criterion{
				one(crit("", "${host}", "is_equal", "h")), one(crit("", "${host}", "is_equal", "h")),
				one(crit("", "${host}", "is_equal", "h")), uriIs("/a"),
			},
			want: &indexView{Always: []int32{0, 1, 2}, Vars: map[string]varView{
				uri: {Prefix: map[string][]int32{"/a": {3}}, Lens: []int{2}},
			}},
		},
		"fewer indexed rules than the minimum": {
			rules:    [][][]manifest.Criterion{uriIs("/a"), uriIs("/b"), one(crit("", "${uri}", "matches", "c"))},
			minRules: 3,
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			if tt.minRules == 0 {
				tt.minRules = 1
			}
			got := viewIndex(buildIndex(compileAll(t, tt.rules), tt.minRules))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("index (-want +got):\n%s", diff)
			}
		})
	}
}

func TestBuildIndexPrefixLengthLimit(t *testing.T) {
	t.Parallel()
	// Lengths 2 to maxPrefixLengths+3, length 2 used by three rules and
	// the longest lengths by one: the three least used lengths are not
	// looked up, and their rules are visited always.
	var rules [][][]manifest.Criterion
	var want []int
	for l := 2; l < maxPrefixLengths+5; l++ {
		rules = append(rules, [][]manifest.Criterion{{crit("", "${uri}", "starts_with", "/"+strings.Repeat("a", l-1))}})
		if l < maxPrefixLengths+2 {
			want = append(want, l)
		}
	}
	for range 2 {
		rules = append(rules, [][]manifest.Criterion{{crit("", "${uri}", "starts_with", "/b")}})
	}
	ix := buildIndex(compileAll(t, rules), 1)
	got := viewIndex(ix).Vars["uri"].Lens
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("lengths (-want +got):\n%s", diff)
	}
	n := len(rules) - 2
	if diff := cmp.Diff([]int32{int32(n - 3), int32(n - 2), int32(n - 1)}, ix.always); diff != "" {
		t.Errorf("always (-want +got):\n%s", diff)
	}
}

// visits returns the rules that an evaluation under ix visits.
func visits(ix *ruleIndex, n int, r *Request, resp *ResponseView) []int {
	r.resetMemo()
	var it ruleIter
	var buf ruleLists
	if ix != nil {
		it.lists = &buf
		it.start(ix, r, resp)
	}
	var out []int
	for i := it.next(-1); i < n; i = it.next(i) {
		out = append(out, i)
	}
	return out
}

// checkVisits fails if the evaluation of r under ix would skip a rule whose
// criteria hold, or visit rules out of order or twice.
func checkVisits(t *testing.T, all []criteria, ix *ruleIndex, r *Request, resp *ResponseView) {
	t.Helper()
	got := visits(ix, len(all), r, resp)
	if !slices.IsSorted(got) || len(slices.Compact(slices.Clone(got))) != len(got) {
		t.Fatalf("visits %v: not ascending and unique", got)
	}
	for i, cr := range all {
		r.resetMemo()
		if cr.match(r, resp) && !slices.Contains(got, i) {
			t.Errorf("rule %d matches %s %s (host %q) but the index skips it", i, r.Method, r.Target, r.Host)
		}
	}
}

func TestIndexNeverSkipsAMatch(t *testing.T) {
	t.Parallel()
	// The requests hit each shape of rule. Rules 2 and 3 have an or with a
	// comparison the index cannot evaluate: they are visited always.
	rules := [][][]manifest.Criterion{
		{{crit("", "${host}", "is_equal", "API.Bank.Example")}},                                                 // case-insensitive host
		{{crit("", "${host}", "starts_with", "Api.")}},                                                          // case-insensitive prefix
		{{crit("", "${uri}", "starts_with", "/a"), crit("or", "${host}", "matches", "^API")}},                   // or with a regex
		{{crit("", "${uri}", "is_equal", "/x"), crit("or", "${http_x_a}", "does_not_exist")}},                   // or with not exists
		{{crit("", "${http_x_a}", "exists"), crit("and", "${http_x_a}", "is_equal", "")}},                       // empty value
		{{crit("", "${http_x_b}", "is_equal", "")}},                                                             // absent header equals ""
		{{crit("", "${uri}", "starts_with", "")}},                                                               // empty prefix
		{{crit("", "${uri}", "starts_with", "/accounts/")}, {crit("", "${request_method}", "is_equal", "GET")}}, // two groups
		{{crit("", "${uri}", "starts_with", "/accounts/42"), crit("and", "${arg_page}", "is_equal", "2")}},
		{{crit("", "${uri}", "is_equal", "/accounts/42"), crit("or", "${uri}", "starts_with", "/acc")}},
		{{crit("", "${http_x_a}", "matches", "(?i)^V"), crit("and", "${uri}", "starts_with", "/")}},
		{{crit("", "${remote_addr}", "is_in_list", "partners"), crit("and", "${request_method}", "is_equal", "POST")}},
		{{crit("", "${uri}", "starts_with", "/accounts/42?")}}, // the query is not in ${uri}
		{{crit("", "${uri}", "starts_with", "/service-1/")}},
		{{crit("", "${uri}", "starts_with", "/service-12/")}},
		{{crit("", "${uri}", "starts_with", "/service-123/")}},
		{{crit("", "${uri}", "is_equal", "/x"), crit("or", "${http_x_a}", "matches", "^v"), crit("and", "${host}", "is_equal", "api.bank.example")}},
	}
	spec := &manifest.ApplicationSpec{}
	for i, groups := range rules {
		spec.Rules = append(spec.Rules, manifest.AppRule{
			Name: fmt.Sprint(i), Criteria: groups,
			Behaviors: []manifest.AppBehavior{{AddRequestHeader: fmt.Sprintf("X-Rule-%d: ${http_x_a}", i)}},
		})
	}
	a := mustApplication(t, spec.Rules...)
	if a.requestIndex == nil {
		t.Fatal("not indexed")
	}
	if diff := cmp.Diff([]int32{2, 3}, a.requestIndex.always); diff != "" {
		t.Fatalf("rules visited always (-want +got):\n%s", diff)
	}
	unindexed := mustApplication(t, spec.Rules...)
	unindexed.requestIndex = nil
	all := make([]criteria, len(a.request))
	for i, rule := range a.request {
		all[i] = rule.crit
	}
	requests := map[string]*Request{
		"host":           testRequest("GET", "/z"),
		"other host":     func() *Request { r := testRequest("GET", "/z"); r.Host = "other.example"; return r }(),
		"uppercase host": func() *Request { r := testRequest("GET", "/z"); r.Host = "API.BANK.EXAMPLE"; return r }(),
		"empty header":   testRequest("GET", "/z", "X-A", ""),
		"header":         testRequest("POST", "/z", "X-A", "v"),
		"accounts":       testRequest("GET", "/accounts/42?page=2"),
		"accounts POST":  testRequest("POST", "/accounts/42?page=1", "X-A", "V"),
		"service 12":     testRequest("GET", "/service-12/x"),
		"service 123":    testRequest("GET", "/service-123/"),
		"service 1":      testRequest("GET", "/service-1/"),
		"short path":     testRequest("GET", "/"),
		"x":              testRequest("GET", "/x", "X-A", "a"),
		"no connection":  func() *Request { r := testRequest("POST", "/z"); r.Conn = nil; return r }(),
	}
	var out, want RequestActions
	for name, r := range requests {
		t.Run(name, func(t *testing.T) {
			checkVisits(t, all, a.requestIndex, r, nil)
			a.EvaluateRequest(r, &out)
			unindexed.EvaluateRequest(r, &want)
			if diff := cmp.Diff(result(&want), result(&out)); diff != "" {
				t.Errorf("indexed result (-unindexed +indexed):\n%s", diff)
			}
		})
	}
}

func TestIndexMatchesUnindexedRandom(t *testing.T) {
	t.Parallel()
	g := criteriaGen{rand.New(rand.NewPCG(3, 4))}
	indexed := 0
	for app := range 40 {
		var rules []manifest.AppRule
		for i := range 30 {
			rules = append(rules, manifest.AppRule{
				Name: fmt.Sprint(i), Criteria: g.criteria(),
				Behaviors: []manifest.AppBehavior{{AddRequestHeader: fmt.Sprintf("X-Rule-%d: ${http_x_a}", i)}},
			})
		}
		// Half the rules end the phase, so that the first match decides.
		for i := 0; i < len(rules); i += 2 {
			rules[i].Behaviors = append(rules[i].Behaviors, manifest.AppBehavior{Deny: true})
		}
		a := mustApplication(t, rules...)
		if a.requestIndex != nil {
			indexed++
		}
		unindexed := mustApplication(t, rules...)
		unindexed.requestIndex = nil
		all := make([]criteria, len(a.request))
		for i, rule := range a.request {
			all[i] = rule.crit
		}
		var out, want RequestActions
		for range 50 {
			r := g.request()
			checkVisits(t, all, a.requestIndex, r, nil)
			a.EvaluateRequest(r, &out)
			unindexed.EvaluateRequest(r, &want)
			if diff := cmp.Diff(result(&want), result(&out)); diff != "" {
				t.Fatalf("application %d, %s %s host %q: (-unindexed +indexed):\n%s", app, r.Method, r.Target, r.Host, diff)
			}
		}
	}
	if indexed < 20 {
		t.Errorf("%d applications of 40 are indexed; the test checks too little", indexed)
	}
}

func TestIndexTooManyLists(t *testing.T) {
	t.Parallel()
	// Nested prefixes on several variables gather more lists than a
	// ruleIter holds: every rule is visited, in order.
	var rules [][][]manifest.Criterion
	for _, v := range []string{"${uri}", "${http_x_a}", "${http_x_b}"} {
		for l := 1; l <= maxPrefixLengths; l++ {
			rules = append(rules, [][]manifest.Criterion{{crit("", v, "starts_with", strings.Repeat("/", l))}})
		}
	}
	all := compileAll(t, rules)
	ix := buildIndex(all, 1)
	slash := strings.Repeat("/", maxPrefixLengths)
	r := testRequest("GET", slash, "X-A", slash, "X-B", slash)
	want := make([]int, len(rules))
	for i := range want {
		want[i] = i
	}
	if diff := cmp.Diff(want, visits(ix, len(rules), r, nil)); diff != "" {
		t.Errorf("visits (-want +got):\n%s", diff)
	}
	checkVisits(t, all, ix, r, nil)
}
