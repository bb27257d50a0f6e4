package rules

import (
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/edgectl/edgectl/pkg/manifest"
)

// FuzzRules compiles arbitrary criteria and header templates and evaluates
// them against requests carrying arbitrary header values: nothing panics,
// and every header value the engine produces is header-safe.
func FuzzRules(f *testing.F) {
	f.Add("${http_x_a}", "matches", "^a.*b$", "X-Out: ${http_x_a} ${uri}", "a\r\nb")
	f.Add("${remote_addr}", "is_in_list", "office", "X-Out: ${ssl_client_s_dn}", "\x00\x7f\xff")
	f.Add("${uri}", "starts_with", "/", "X-Out: ${arg_q}${cookie_c}", "é")
	f.Add("${host", "exists", "", "X-Out: ${", "")
	lists := map[string]*NetworkList{"office": newNetworkList(netip.MustParsePrefix("10.0.0.0/8"))}
	f.Fuzz(func(t *testing.T, variable, op, arg, header, value string) {
		crit := manifest.Criterion{Variable: variable, Operator: op}
		if arg != "" {
			crit.Argument = &arg
		}
		spec := &manifest.ApplicationSpec{Rules: []manifest.AppRule{{
			Name:      "r",
			Criteria:  [][]manifest.Criterion{{crit}},
			Behaviors: []manifest.AppBehavior{{AddRequestHeader: header}},
		}}}
		app, _ := CompileApplication(spec, lists)
		if app == nil {
			return
		}
		h := httptest.NewRequest("GET", "/p?q=1", nil)
		h.Header["X-A"] = []string{value}
		h.Header["Cookie"] = []string{"c=" + value}
		r := fromHTTP(h, "a.example")
		r.Conn = NewConn(netip.MustParseAddrPort("10.1.2.3:4"), netip.AddrPort{}, nil,
			&ClientCert{Verify: "SUCCESS", SubjectDN: "/CN=" + value})
		var out RequestActions
		app.EvaluateRequest(r, &out)
		for _, hd := range out.Add {
			for i := 0; i < len(hd.Value); i++ {
				if c := hd.Value[i]; c < 0x20 || c >= 0x7f {
					t.Fatalf("header %s carries byte %#x: %q", hd.Name, c, hd.Value)
				}
			}
		}
	})
}
