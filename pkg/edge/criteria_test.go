package edge

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
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
	return &Request{
		HTTP:   h,
		Host:   "api.bank.example",
		Scheme: "https",
		Conn: NewConn(netip.MustParseAddrPort("203.0.113.9:50000"), netip.MustParseAddrPort("192.0.2.1:443"), nil,
			&ClientCert{Verify: "SUCCESS", Status: StatusSuccess, SubjectCN: "partner-app", SubjectDN: "/C=BR/O=Partner Bank/CN=partner-app"}),
	}
}

var testLists = map[string]*NetworkList{
	"partners": NewNetworkList(netip.MustParsePrefix("203.0.113.0/24"), netip.MustParsePrefix("2001:db8::/32")),
	"office":   NewNetworkList(netip.MustParsePrefix("10.0.0.0/8")),
}

func TestCriteriaCompileErrors(t *testing.T) {
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
	// A request without connection facts reads as no certificate.
	r := &Request{HTTP: httptest.NewRequest("GET", "/", nil), Host: "h"}
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
	a := benchApplication(b, 200)
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
	spec := &manifest.ApplicationSpec{}
	for i := range 200 {
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
