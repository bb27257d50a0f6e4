package rules

import (
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/edgectl/edgectl/pkg/manifest"
)

func TestVariableValues(t *testing.T) {
	t.Parallel()
	h := httptest.NewRequest("POST", "/a/b?x=1&Y=%20z", nil)
	h.Header.Add("X-Multi", "1")
	h.Header.Add("X-Multi", "2")
	h.Header.Set("Cookie", "a=1; b=2")
	r := fromHTTP(h, "api.bank.example")
	// No Scheme: a connection with TLS facts reads as https.
	r.Conn = NewConn(netip.MustParseAddrPort("[::ffff:203.0.113.9]:50000"), netip.MustParseAddrPort("[2001:db8::1]:8443"),
		&TLS{ServerName: "api.bank.example", Protocol: "TLSv1.3", Cipher: "TLS_AES_128_GCM_SHA256"},
		&ClientCert{
			// The values pkg/edge formats of the certificate of its
			// TestNewClientCert.
			Verify: VerifySuccess, Status: StatusSuccess, SubjectCN: "partner-app", Serial: "01:AB:CD",
			NotBefore: "20250102030405", NotAfter: "20260102030405", Expiry: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
			SANURI: "spiffe://bank.example/partner",
		})
	r.Now = time.Date(2025, 12, 1, 3, 4, 5, 0, time.UTC)
	names := []string{
		"host", "uri", "request_uri", "request_method", "scheme", "args", "arg_y", "arg_missing", "http_x_multi", "cookie_b",
		"remote_addr", "remote_port", "server_addr", "server_port", "request", "ssl_server_name", "ssl_protocol", "ssl_cipher",
		"ssl_client_verify", "ssl_client_s_dn_parsed", "ssl_client_serial", "ssl_client_v_start", "ssl_client_v_end",
		"ssl_client_v_remain", "ssl_client_san_uri",
	}
	got := map[string]string{}
	for _, n := range names {
		v, msg := lookupAppVar(n, "request")
		if msg != "" {
			t.Fatal(msg)
		}
		got[n], _ = r.value(&v, nil)
	}
	want := map[string]string{
		"host": "api.bank.example", "uri": "/a/b", "request_uri": "/a/b?x=1&Y=%20z", "request_method": "POST", "scheme": "https",
		"args": "x=1&Y=%20z", "arg_y": "%20z", "arg_missing": "", "http_x_multi": "1, 2", "cookie_b": "2",
		"remote_addr": "203.0.113.9", "remote_port": "50000", "server_addr": "2001:db8::1", "server_port": "8443",
		"request": "POST /a/b?x=1&Y=%20z HTTP/1.1", "ssl_server_name": "api.bank.example", "ssl_protocol": "TLSv1.3",
		"ssl_cipher": "TLS_AES_128_GCM_SHA256", "ssl_client_verify": "SUCCESS", "ssl_client_s_dn_parsed": "partner-app",
		"ssl_client_serial": "01:AB:CD", "ssl_client_v_start": "20250102030405", "ssl_client_v_end": "20260102030405",
		"ssl_client_v_remain": "32", "ssl_client_san_uri": "spiffe://bank.example/partner",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestDaysRemaining(t *testing.T) {
	t.Parallel()
	exp := time.Date(2026, 1, 10, 0, 0, 0, 0, time.UTC)
	got := []int{
		daysRemaining(exp, exp.Add(-48*time.Hour)), daysRemaining(exp, exp.Add(-time.Second)),
		daysRemaining(exp, exp), daysRemaining(exp, exp.Add(time.Second)), daysRemaining(exp, exp.Add(25*time.Hour)),
	}
	if diff := cmp.Diff([]int{2, 0, 0, 0, 0}, got); diff != "" { // never negative, as nginx
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestDaysRemainingAsNginx(t *testing.T) {
	t.Parallel()
	goldenEnd := time.Date(2031, 5, 17, 12, 0, 0, 0, time.UTC)
	tests := map[string]struct {
		now  time.Time
		want int
	}{
		"two days": {goldenEnd.Add(-48 * time.Hour), 2},
		// nginx counts whole seconds (ngx_time), so a nanosecond is no loss.
		"just under two":     {goldenEnd.Add(-48*time.Hour + time.Nanosecond), 2},
		"a second under two": {goldenEnd.Add(-48*time.Hour + time.Second), 1},
		"one day":            {goldenEnd.Add(-24 * time.Hour), 1},
		"last second":        {goldenEnd.Add(-time.Second), 0},
		"at expiry":          {goldenEnd, 0},
		// Never negative, as nginx: 0 once expired.
		"expired a second":   {goldenEnd.Add(time.Second), 0},
		"expired a day+":     {goldenEnd.Add(24*time.Hour + time.Second), 0},
		"400 years":          {goldenEnd.AddDate(-400, 0, 0), 146097},
		"400 years, expired": {goldenEnd.AddDate(400, 0, 0), 0},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, daysRemaining(goldenEnd, tt.now)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// memoSlotsOf returns the memo slot of every memoized variable that the
// rules of one phase read, by spelling, and fails if two reads of a
// variable disagree.
func memoSlotsOf(t *testing.T, rules []appRule, ix *ruleIndex) map[string]uint8 {
	t.Helper()
	got := map[string]uint8{}
	add := func(v variable) {
		k := spell(v)
		if s, ok := got[k]; ok && s != v.slot {
			t.Errorf("%s has slots %d and %d", k, s, v.slot)
		}
		got[k] = v.slot
	}
	for _, r := range rules {
		for _, c := range r.crit {
			if c.slot != c.x.v.slot {
				t.Errorf("comparison slot %d, variable slot %d", c.slot, c.x.v.slot)
			}
			add(c.x.v)
		}
		for _, b := range r.behaviors {
			if b.tmpl != nil {
				for _, seg := range b.tmpl.segs {
					if seg.isVar {
						add(seg.v)
					}
				}
			}
		}
	}
	if ix != nil {
		for _, x := range ix.vars {
			add(x.v)
		}
	}
	maps.DeleteFunc(got, func(_ string, s uint8) bool { return s == 0 })
	return got
}

func TestAssignSlots(t *testing.T) {
	t.Parallel()
	const uri, tenant, a, b, route = "uri", "http_X-Tenant", "http_X-A", "http_X-B", "upstream_http_X-Route"
	rule := func(phase string, groups [][]manifest.Criterion, headers ...string) manifest.AppRule {
		r := manifest.AppRule{Name: "r", Phase: phase, Criteria: groups}
		if len(headers) == 0 {
			headers = []string{"X-Literal: 1"}
		}
		for _, h := range headers {
			if phase == "response" {
				r.Behaviors = append(r.Behaviors, manifest.AppBehavior{AddResponseHeader: h})
			} else {
				r.Behaviors = append(r.Behaviors, manifest.AppBehavior{AddRequestHeader: h})
			}
		}
		return r
	}
	is := func(v, arg string) [][]manifest.Criterion {
		return [][]manifest.Criterion{{crit("", v, "is_equal", arg)}}
	}
	// many returns n rules that each compare their own header; with
	// echo, a template reads it too.
	many := func(n int, echo bool) []manifest.AppRule {
		var out []manifest.AppRule
		for i := range n {
			h := "X-Out: 1"
			if echo {
				h = fmt.Sprintf("X-Out-%d: ${http_x_%d}", i, i)
			}
			out = append(out, rule("", is(fmt.Sprintf("${http_x_%d}", i), "v"), h))
		}
		return out
	}
	tests := map[string]struct {
		rules         []manifest.AppRule
		request, resp map[string]uint8
	}{
		"variables read once are not memoized": {
			rules:   []manifest.AppRule{rule("", is("${uri}", "/a"), "X: ${http_x_a}")},
			request: map[string]uint8{},
			resp:    map[string]uint8{},
		},
		"a variable read by criteria and a template": {
			rules:   []manifest.AppRule{rule("", is("${http_x_tenant}", "t"), "X: ${http_x_tenant}")},
			request: map[string]uint8{tenant: 1},
			resp:    map[string]uint8{},
		},
		"host is a field, never memoized": {
			rules:   []manifest.AppRule{rule("", is("${host}", "a"), "X: ${host}"), rule("", is("${host}", "b"))},
			request: map[string]uint8{},
			resp:    map[string]uint8{},
		},
		"the most read first": {
			rules: []manifest.AppRule{
				rule("", is("${http_x_b}", "1"), "X: ${http_x_b}"),
				rule("", is("${http_x_a}", "1"), "X: ${http_x_a}${http_x_a}"),
			},
			request: map[string]uint8{a: 1, b: 2},
			resp:    map[string]uint8{},
		},
		"each phase has its slots": {
			rules: []manifest.AppRule{
				rule("", is("${uri}", "/a")), rule("", is("${uri}", "/b")),
				rule("response", is("${upstream_http_x_route}", "r"), "X: ${upstream_http_x_route}"),
			},
			request: map[string]uint8{uri: 1},
			resp:    map[string]uint8{route: 1},
		},
		"index reads count": {
			// The rules are indexed: each header is read by its rule and
			// by the index.
			rules:   many(minIndexedRules, false),
			request: map[string]uint8{},
			resp:    map[string]uint8{},
		},
		"slots run out": {
			rules:   many(maxMemo+2, true),
			request: map[string]uint8{},
			resp:    map[string]uint8{},
		},
	}
	for i := range minIndexedRules {
		tests["index reads count"].request[fmt.Sprintf("http_X-%d", i)] = uint8(i + 1)
	}
	for i := range maxMemo {
		tests["slots run out"].request[fmt.Sprintf("http_X-%d", i)] = uint8(i + 1)
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			app := mustApplication(t, tt.rules...)
			if diff := cmp.Diff(tt.request, memoSlotsOf(t, app.request, app.requestIndex)); diff != "" {
				t.Errorf("request phase slots (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.resp, memoSlotsOf(t, app.response, app.responseIndex)); diff != "" {
				t.Errorf("response phase slots (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMemoizedValues(t *testing.T) {
	t.Parallel()
	// One evaluation resolves a memoized variable once; the next
	// evaluation of a reused Request resolves it again.
	a := mustApplication(t,
		manifest.AppRule{Name: "tenant", Criteria: [][]manifest.Criterion{{crit("", "${http_x_tenant}", "starts_with", "t-")}},
			Behaviors: []manifest.AppBehavior{{AddRequestHeader: "X-Seen: ${http_x_tenant}"}}},
	)
	r := testRequest("GET", "/", "X-Tenant", "t-1")
	var out RequestActions
	a.EvaluateRequest(r, &out)
	if r.memoSet == 0 {
		t.Fatal("nothing memoized")
	}
	http.Header(r.Header).Set("X-Tenant", "t-2")
	a.EvaluateRequest(r, &out)
	if diff := cmp.Diff([]Header{{"X-Seen", "t-2"}}, out.Add); diff != "" {
		t.Errorf("second evaluation (-want +got):\n%s", diff)
	}
}

// TestClientPEMsOnFirstUse: each PEM form of a client certificate is built
// on its first read, once however many streams of the connection read it
// at once, never when no rule reads it, and again after ReleasePEMs (the
// connection went idle).
func TestClientPEMsOnFirstUse(t *testing.T) {
	t.Parallel()
	var builds [numPEMForms]atomic.Int32
	names := []string{"ssl_client_escaped_cert", "ssl_client_raw_cert", "ssl_client_xfcc"}
	values := []string{"escaped", "raw", "xfcc"}
	c := &ClientCert{Verify: VerifySuccess, Status: StatusSuccess, SubjectCN: "partner-app",
		BuildPEM: func(c *ClientCert, f PEMForm) string {
			builds[f].Add(1)
			return values[f]
		}}
	conn := NewConn(netip.MustParseAddrPort("203.0.113.9:50000"), netip.MustParseAddrPort("192.0.2.1:443"), nil, c)
	read := func(name string) string {
		r := fromHTTP(httptest.NewRequest("GET", "/", nil), "api.bank.example")
		r.Conn = conn
		v, msg := lookupAppVar(name, "request")
		if msg != "" {
			t.Fatal(msg)
		}
		s, _ := r.value(&v, nil)
		return s
	}
	count := func() (n [numPEMForms]int32) {
		for i := range builds {
			n[i] = builds[i].Load()
		}
		return n
	}
	if got := read("ssl_client_s_dn_parsed"); got != "partner-app" || count() != [numPEMForms]int32{} {
		t.Fatalf("ssl_client_s_dn_parsed = %q with builds %v; want partner-app and none", got, count())
	}
	if got := read("ssl_client_escaped_cert"); got != "escaped" || count() != [numPEMForms]int32{1, 0, 0} {
		t.Fatalf("ssl_client_escaped_cert = %q with builds %v; want escaped, built alone", got, count())
	}
	for round, want := range [][numPEMForms]int32{{1, 1, 1}, {2, 2, 2}} {
		if round > 0 {
			c.ReleasePEMs()
		}
		var wg sync.WaitGroup
		got := make([]string, 30)
		for i := range got {
			wg.Go(func() { got[i] = read(names[i%3]) })
		}
		wg.Wait()
		for i, s := range got {
			if s != values[i%3] {
				t.Errorf("round %d: read %d = %q, want %q", round, i, s, values[i%3])
			}
		}
		if n := count(); n != want {
			t.Errorf("round %d: builds %v, want %v", round, n, want)
		}
	}
}
