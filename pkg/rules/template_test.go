package rules

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestTemplateCompileErrors(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		s, phase string
		want     []FieldError
	}{
		"literal":              {s: "plain value", phase: "request"},
		"dollar without brace": {s: "costs $5 ${host}", phase: "request"},
		"unterminated": {s: "a ${ssl_client_s_dn", phase: "request", want: []FieldError{
			{Path: "p", Message: `unterminated "${" in "a ${ssl_client_s_dn": a variable is written ${name}`},
		}},
		"empty": {s: "a ${}", phase: "request", want: []FieldError{{Path: "p", Message: `empty variable "${}" in "a ${}"`}}},
		"unknown with suggestion": {s: "${ssl_client_s_dn_parse}", phase: "request", want: []FieldError{
			{Path: "p", Message: `unknown variable "${ssl_client_s_dn_parse}"; did you mean "${ssl_client_s_dn_parsed}"?`},
		}},
		"response variable in request": {s: "${sent_http_server}", phase: "request", want: []FieldError{
			{Path: "p", Message: `variable "${sent_http_server}" is only available in the response phase`},
		}},
		"response variable in response": {s: "${status} ${sent_http_server} ${upstream_http_x_a} ${upstream_status}", phase: "response"},
		"invalid name": {s: "${http_x-a}", phase: "request", want: []FieldError{
			{Path: "p", Message: `invalid variable name "${http_x-a}": use letters, digits and _`},
		}},
		"control character in literal": {s: "a\r\nInjected: 1", phase: "request", want: []FieldError{
			{Path: "p", Message: `"a\r\nInjected: 1" contains the control character U+000D, which is not allowed in a header, path or URL`},
		}},
		"several errors": {s: "${nope} ${hots}", phase: "request", want: []FieldError{
			{Path: "p", Message: `unknown variable "${nope}"`},
			{Path: "p", Message: `unknown variable "${hots}"; did you mean "${host}"?`},
		}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			got := CheckTemplate("p", tt.s, tt.phase)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestTemplateRender(t *testing.T) {
	t.Parallel()
	r := testRequest("GET", "/a%0Db?x=1", "X-Evil", "v\x00a\x7fl\tue", "X-Utf8", "São")
	r.Conn.Client.SubjectDN = "/CN=evil\r\nX-Injected: 1"
	resp := &ResponseView{Status: 201, Header: map[string][]string{"Server": {"origin"}}, UpstreamStatus: 200}
	tests := map[string]struct {
		s, phase string
		want     string
	}{
		"literal":                      {s: "static", want: "static"},
		"one variable":                 {s: "${ssl_client_s_dn_parsed}", want: "partner-app"},
		"two variables":                {s: "${host}:${ssl_client_s_dn_parsed}", want: "api.bank.example:partner-app"},
		"CR LF in a certificate value": {s: "dn=${ssl_client_s_dn}", want: "dn=/CN=evil%0D%0AX-Injected: 1"},
		"NUL DEL TAB in a header":      {s: "${http_x_evil}", want: "v%00a%7Fl%09ue"},
		"decoded CR in the path":       {s: "${uri}", want: "/a%0Db"},
		"non-ASCII":                    {s: "${http_x_utf8}", want: "S%C3%A3o"},
		"percent kept":                 {s: "${request_uri}", want: "/a%0Db?x=1"},
		"absent variable is empty":     {s: "[${http_x_absent}]", want: "[]"},
		"response":                     {s: "${status}/${upstream_status} ${sent_http_server}", phase: "response", want: "201/200 origin"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			phase := tt.phase
			if phase == "" {
				phase = "request"
			}
			tmpl, errs := CompileTemplate("p", tt.s, phase)
			if errs != nil {
				t.Fatal(errs)
			}
			if got := tmpl.Render(r, resp); got != tt.want {
				t.Errorf("Render = %q, want %q", got, tt.want)
			}
			if tmpl.String() != tt.s {
				t.Errorf("String = %q", tmpl.String())
			}
		})
	}
}
