package rules

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/edgectl/edgectl/pkg/manifest"
)

func TestCompileFirewallErrors(t *testing.T) {
	t.Parallel()
	host := [][]manifest.Criterion{{crit("", "host", "is_equal", "api.bank.example")}}
	tests := map[string]struct {
		rules []manifest.FirewallRule
		want  []FieldError
	}{
		"valid": {rules: []manifest.FirewallRule{
			{Name: "a", Criteria: host, Behaviors: []manifest.FirewallBehavior{{Deny: true}}},
			{Name: "b", Behaviors: []manifest.FirewallBehavior{{Drop: true}}},
			{Name: "c", Behaviors: []manifest.FirewallBehavior{{SetRateLimit: &manifest.RateLimit{Type: "minute", LimitBy: "global", AverageRateLimit: 10}}}},
			{Name: "d", Behaviors: []manifest.FirewallBehavior{{SetCustomResponse: &manifest.CustomResponse{StatusCode: 451, ContentType: "application/json", ContentBody: "{}"}}}},
		}},
		"no behavior key": {
			rules: []manifest.FirewallRule{{Name: "a", Behaviors: []manifest.FirewallBehavior{{}}}},
			want:  []FieldError{{Path: "spec.rules[0].behaviors[0]", Message: "a behavior sets exactly one of deny, drop, setRateLimit, setCustomResponse (deny and drop take true); this one sets 0"}},
		},
		"two behavior keys": {
			rules: []manifest.FirewallRule{{Name: "a", Behaviors: []manifest.FirewallBehavior{{Deny: true, Drop: true}}}},
			want:  []FieldError{{Path: "spec.rules[0].behaviors[0]", Message: "a behavior sets exactly one of deny, drop, setRateLimit, setCustomResponse (deny and drop take true); this one sets 2"}},
		},
		"no behaviors": {
			rules: []manifest.FirewallRule{{Name: "a"}},
			want:  []FieldError{{Path: "spec.rules[0].behaviors", Message: "a rule needs at least one behavior"}},
		},
		"bad rate limit": {
			rules: []manifest.FirewallRule{{Name: "a", Behaviors: []manifest.FirewallBehavior{{SetRateLimit: &manifest.RateLimit{Type: "hour", LimitBy: "ip", AverageRateLimit: 0, MaximumBurstSize: -1}}}}},
			want: []FieldError{
				{Path: "spec.rules[0].behaviors[0].setRateLimit.type", Message: `unknown rate limit type "hour"; use second or minute`},
				{Path: "spec.rules[0].behaviors[0].setRateLimit.limitBy", Message: `unknown limitBy "ip"; use clientIp or global`},
				{Path: "spec.rules[0].behaviors[0].setRateLimit.averageRateLimit", Message: "averageRateLimit must be at least 1, not 0"},
				{Path: "spec.rules[0].behaviors[0].setRateLimit.maximumBurstSize", Message: "maximumBurstSize must be at least 1, not -1"},
			},
		},
		"bad custom response": {
			rules: []manifest.FirewallRule{{Name: "a", Behaviors: []manifest.FirewallBehavior{{SetCustomResponse: &manifest.CustomResponse{StatusCode: 503, ContentType: "text/", ContentBody: strings.Repeat("é", 501)}}}}},
			want: []FieldError{
				{Path: "spec.rules[0].behaviors[0].setCustomResponse.statusCode", Message: "statusCode must be between 200 and 499, not 503"},
				{Path: "spec.rules[0].behaviors[0].setCustomResponse.contentBody", Message: "contentBody is 501 characters long; the limit is 500"},
				{Path: "spec.rules[0].behaviors[0].setCustomResponse.contentType", Message: `invalid content type "text/"`},
			},
		},
		"custom body of 500 characters": {
			rules: []manifest.FirewallRule{{Name: "a", Behaviors: []manifest.FirewallBehavior{{SetCustomResponse: &manifest.CustomResponse{StatusCode: 200, ContentBody: strings.Repeat("é", 500)}}}}},
		},
		"unreachable behavior": {
			rules: []manifest.FirewallRule{{Name: "a", Behaviors: []manifest.FirewallBehavior{{Deny: true}, {Drop: true}}}},
			want:  []FieldError{{Path: "spec.rules[0].behaviors[1]", Message: "unreachable behavior: behaviors[0] (deny) already ends the rule", Warning: true}},
		},
		"behavior after a rate limit is reachable": {
			rules: []manifest.FirewallRule{{Name: "a", Behaviors: []manifest.FirewallBehavior{
				{SetRateLimit: &manifest.RateLimit{Type: "second", LimitBy: "clientIp", AverageRateLimit: 1}}, {Deny: true},
			}}},
		},
		"inactive rules are still checked": {
			rules: []manifest.FirewallRule{{Name: "a", Active: ptr(false), Criteria: [][]manifest.Criterion{{crit("", "hots", "exists")}}, Behaviors: []manifest.FirewallBehavior{{Deny: true}}}},
			want:  []FieldError{{Path: "spec.rules[0].criteria[0][0].variable", Message: `unknown firewall variable "hots"; did you mean "host"?`}},
		},
		"errors in several rules": {
			rules: []manifest.FirewallRule{
				{Name: "a", Criteria: [][]manifest.Criterion{{crit("", "network", "is_in_list", "nope")}}, Behaviors: []manifest.FirewallBehavior{{Deny: true}}},
				{Name: "b", Criteria: host, Behaviors: []manifest.FirewallBehavior{{}}},
			},
			want: []FieldError{
				{Path: "spec.rules[0].criteria[0][0].argument", Message: `unknown NetworkList "nope"`},
				{Path: "spec.rules[1].behaviors[0]", Message: "a behavior sets exactly one of deny, drop, setRateLimit, setCustomResponse (deny and drop take true); this one sets 0"},
			},
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			f, got := CompileFirewall(&manifest.FirewallSpec{Rules: tt.rules}, testLists)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
			if (f == nil) != HasErrors(got) {
				t.Errorf("firewall = %v with errors %v", f, got)
			}
		})
	}
}

func mustFirewall(t testing.TB, rules ...manifest.FirewallRule) *Firewall {
	t.Helper()
	f, errs := CompileFirewall(&manifest.FirewallSpec{Rules: rules}, testLists)
	if HasErrors(errs) {
		t.Fatal(errs)
	}
	return f
}

func TestFirewallEvaluate(t *testing.T) {
	t.Parallel()
	f := mustFirewall(t,
		manifest.FirewallRule{Name: "inactive", Active: ptr(false), Behaviors: []manifest.FirewallBehavior{{Drop: true}}},
		manifest.FirewallRule{
			Name:      "deny unverified",
			Criteria:  [][]manifest.Criterion{{crit("", "client_certificate_validation", "is_not_equal", "true")}},
			Behaviors: []manifest.FirewallBehavior{{Deny: true}},
		},
		manifest.FirewallRule{
			Name:      "drop scanners",
			Criteria:  [][]manifest.Criterion{{crit("", "header_user_agent", "matches", "(?i)sqlmap")}},
			Behaviors: []manifest.FirewallBehavior{{Drop: true}},
		},
		manifest.FirewallRule{
			Name:      "maintenance",
			Criteria:  [][]manifest.Criterion{{crit("", "request_uri", "starts_with", "/legacy/")}},
			Behaviors: []manifest.FirewallBehavior{{SetCustomResponse: &manifest.CustomResponse{StatusCode: 410, ContentBody: "gone"}}},
		},
		manifest.FirewallRule{
			Name:      "office only",
			Criteria:  [][]manifest.Criterion{{crit("", "request_uri", "starts_with", "/admin/"), crit("and", "network", "is_not_in_list", "office")}},
			Behaviors: []manifest.FirewallBehavior{{Deny: true}},
		},
	)
	unverified := testRequest("GET", "/")
	unverified.Conn.Client = &ClientCert{Verify: "FAILED:certificate has expired", Status: StatusVerificationError}
	tests := map[string]struct {
		r    *Request
		want FirewallDecision
	}{
		"allowed":    {r: testRequest("GET", "/accounts"), want: FirewallDecision{}},
		"unverified": {r: unverified, want: FirewallDecision{Action: Deny, Rule: "deny unverified", Status: 403, ContentType: DefaultContentType, Body: "Forbidden\n"}},
		"no connection facts": {
			r:    fromHTTP(httptest.NewRequest("GET", "/", nil), "api.bank.example"),
			want: FirewallDecision{Action: Deny, Rule: "deny unverified", Status: 403, ContentType: DefaultContentType, Body: "Forbidden\n"},
		},
		"drop":   {r: testRequest("GET", "/", "User-Agent", "SQLMap/1.0"), want: FirewallDecision{Action: Drop, Rule: "drop scanners"}},
		"custom": {r: testRequest("GET", "/legacy/x"), want: FirewallDecision{Action: Custom, Rule: "maintenance", Status: 410, ContentType: DefaultContentType, Body: "gone"}},
		"network": {
			r:    testRequest("GET", "/admin/users"),
			want: FirewallDecision{Action: Deny, Rule: "office only", Status: 403, ContentType: DefaultContentType, Body: "Forbidden\n"},
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, f.Evaluate(tt.r)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	t.Run("nil firewall allows", func(t *testing.T) {
		var nilFW *Firewall
		if d := nilFW.Evaluate(unverified); d.Action != Allow {
			t.Errorf("got %v", d)
		}
	})
	t.Run("action names", func(t *testing.T) {
		got := []string{Allow.String(), Deny.String(), Drop.String(), RateLimited.String(), Custom.String()}
		if diff := cmp.Diff([]string{"allow", "deny", "drop", "rate_limited", "custom"}, got); diff != "" {
			t.Error(diff)
		}
	})
}

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func fromAddr(addr string) *Request {
	r := testRequest("GET", "/")
	r.Conn = NewConn(netip.AddrPortFrom(netip.MustParseAddr(addr), 1234), netip.MustParseAddrPort("192.0.2.1:443"), nil, nil)
	return r
}

func TestRateLimit(t *testing.T) {
	t.Parallel()
	type step struct {
		advance time.Duration
		from    string
		want    string // "ok" or "429 after Ns"
	}
	rl := func(typ, by string, avg, burst int) manifest.FirewallRule {
		return manifest.FirewallRule{Name: "limit", Behaviors: []manifest.FirewallBehavior{
			{SetRateLimit: &manifest.RateLimit{Type: typ, LimitBy: by, AverageRateLimit: avg, MaximumBurstSize: burst}},
		}}
	}
	tests := map[string]struct {
		rule  manifest.FirewallRule
		steps []step
	}{
		"per client, burst defaults to average": {
			rule: rl("second", "clientIp", 2, 0),
			steps: []step{
				{0, "203.0.113.1", "ok"}, {0, "203.0.113.1", "ok"}, {0, "203.0.113.1", "429 retry 1"},
				{0, "203.0.113.2", "ok"}, // another client has its own bucket
				{250 * time.Millisecond, "203.0.113.1", "429 retry 1"},
				{250 * time.Millisecond, "203.0.113.1", "ok"}, // 0.5s at 2/s refills one token
				{0, "203.0.113.1", "429 retry 1"},
				{10 * time.Second, "203.0.113.1", "ok"}, {0, "203.0.113.1", "ok"}, {0, "203.0.113.1", "429 retry 1"}, // capped at the burst
			},
		},
		"per client with a burst, per minute": {
			rule: rl("minute", "clientIp", 6, 3),
			steps: []step{
				{0, "198.51.100.1", "ok"}, {0, "198.51.100.1", "ok"}, {0, "198.51.100.1", "ok"}, {0, "198.51.100.1", "429 retry 10"},
				{9 * time.Second, "198.51.100.1", "429 retry 1"}, {time.Second, "198.51.100.1", "ok"},
			},
		},
		"IPv6 clients share their /64": {
			rule: rl("second", "clientIp", 1, 1),
			steps: []step{
				{0, "2001:db8:1:2::1", "ok"}, {0, "2001:db8:1:2::ffff", "429 retry 1"}, {0, "2001:db8:1:3::1", "ok"},
				{0, "::ffff:192.0.2.9", "ok"}, {0, "192.0.2.9", "429 retry 1"},
			},
		},
		"global": {
			rule: rl("second", "global", 1, 2),
			steps: []step{
				{0, "203.0.113.1", "ok"}, {0, "203.0.113.2", "ok"}, {0, "203.0.113.3", "429 retry 1"},
				{time.Second, "203.0.113.4", "ok"}, {0, "203.0.113.1", "429 retry 1"},
			},
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			f := mustFirewall(t, tt.rule)
			clock := &fakeClock{t: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
			f.setClock(clock.now)
			var want, got []string
			for _, s := range tt.steps {
				clock.advance(s.advance)
				d := f.Evaluate(fromAddr(s.from))
				res := "ok"
				if d.Action != Allow {
					res = d.Action.String() + " " + http.StatusText(d.Status)
					if d.Action == RateLimited && d.Status == 429 {
						res = "429 retry " + strconv.Itoa(d.RetryAfter)
					}
				}
				want, got = append(want, s.from+" "+s.want), append(got, s.from+" "+res)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestRateLimitThenDeny(t *testing.T) {
	t.Parallel()
	// Within the limit, the rule's next behaviors and the next rules still
	// run: a rate limit never lets a request skip later deny rules.
	f := mustFirewall(t,
		manifest.FirewallRule{Name: "limit", Behaviors: []manifest.FirewallBehavior{{SetRateLimit: &manifest.RateLimit{Type: "second", LimitBy: "global", AverageRateLimit: 100}}}},
		manifest.FirewallRule{Name: "deny", Criteria: [][]manifest.Criterion{{crit("", "request_uri", "is_equal", "/x")}}, Behaviors: []manifest.FirewallBehavior{{Deny: true}}},
	)
	if d := f.Evaluate(testRequest("GET", "/x")); d.Action != Deny || d.Rule != "deny" {
		t.Errorf("got %+v", d)
	}
}

func TestRateLimitEviction(t *testing.T) {
	t.Parallel()
	l := newLimiter(1, 1, false)
	now := int64(1e18)
	for i := range limiterShards * maxBucketsPerShd * 2 {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		l.allow(a, now)
	}
	total := 0
	for i := range l.shards {
		total += len(l.shards[i].m)
	}
	if total > limiterShards*maxBucketsPerShd {
		t.Errorf("%d buckets kept, limit %d", total, limiterShards*maxBucketsPerShd)
	}
	// Once refilled, buckets are evicted first.
	now += 2e9
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		s.evict(l, now)
		n := len(s.m)
		s.mu.Unlock()
		if n != 0 {
			t.Fatalf("shard %d keeps %d full buckets", i, n)
		}
	}
}

func TestCanDenyUnverified(t *testing.T) {
	t.Parallel()
	verification := [][]manifest.Criterion{{crit("", "ssl_verification_status", "is_not_equal", "SUCCESS")}}
	tests := map[string]struct {
		rules []manifest.FirewallRule
		want  bool
	}{
		"deny on validation": {rules: []manifest.FirewallRule{{
			Name: "a", Criteria: [][]manifest.Criterion{{crit("", "host", "is_equal", "x"), crit("and", "client_certificate_validation", "is_equal", "false")}},
			Behaviors: []manifest.FirewallBehavior{{Deny: true}},
		}}, want: true},
		"drop on status":      {rules: []manifest.FirewallRule{{Name: "a", Criteria: verification, Behaviors: []manifest.FirewallBehavior{{Drop: true}}}}, want: true},
		"custom 401":          {rules: []manifest.FirewallRule{{Name: "a", Criteria: verification, Behaviors: []manifest.FirewallBehavior{{SetCustomResponse: &manifest.CustomResponse{StatusCode: 401}}}}}, want: true},
		"custom 200":          {rules: []manifest.FirewallRule{{Name: "a", Criteria: verification, Behaviors: []manifest.FirewallBehavior{{SetCustomResponse: &manifest.CustomResponse{StatusCode: 200}}}}}},
		"rate limit":          {rules: []manifest.FirewallRule{{Name: "a", Criteria: verification, Behaviors: []manifest.FirewallBehavior{{SetRateLimit: &manifest.RateLimit{Type: "second", LimitBy: "global", AverageRateLimit: 1}}}}}},
		"pinning":             {rules: []manifest.FirewallRule{{Name: "a", Criteria: [][]manifest.Criterion{{crit("", "ssl_client_fingerprint_sha256", "is_not_equal", "ab")}}, Behaviors: []manifest.FirewallBehavior{{Deny: true}}}}, want: true},
		"inactive":            {rules: []manifest.FirewallRule{{Name: "a", Active: ptr(false), Criteria: verification, Behaviors: []manifest.FirewallBehavior{{Deny: true}}}}},
		"deny on other facts": {rules: []manifest.FirewallRule{{Name: "a", Criteria: [][]manifest.Criterion{{crit("", "host", "is_equal", "x")}}, Behaviors: []manifest.FirewallBehavior{{Deny: true}}}}},
		"no rules":            {},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			if got := mustFirewall(t, tt.rules...).CanDenyUnverified(); got != tt.want {
				t.Errorf("CanDenyUnverified = %v, want %v", got, tt.want)
			}
		})
	}
	var nilFW *Firewall
	if nilFW.CanDenyUnverified() {
		t.Error("nil firewall denies nothing")
	}
}

func TestCompileApplicationErrors(t *testing.T) {
	t.Parallel()
	rule := func(phase string, bs ...manifest.AppBehavior) manifest.AppRule {
		return manifest.AppRule{Name: "r", Phase: phase, Behaviors: bs}
	}
	tests := map[string]struct {
		rules []manifest.AppRule
		want  []FieldError
	}{
		"every request behavior": {rules: []manifest.AppRule{rule("",
			manifest.AppBehavior{AddRequestHeader: "Client-Cert: ${ssl_client_escaped_cert}"},
			manifest.AppBehavior{FilterRequestHeader: "X-Internal"},
			manifest.AppBehavior{RewriteRequest: "/v2${uri}?${args}"},
			manifest.AppBehavior{RedirectHTTPToHTTPS: true},
			manifest.AppBehavior{RedirectTo301: "https://${host}/moved"},
		), rule("request", manifest.AppBehavior{RedirectTo302: "/login"}),
			rule("request", manifest.AppBehavior{Deny: true}), rule("request", manifest.AppBehavior{NoContent: true}),
			rule("request", manifest.AppBehavior{Deliver: true}), rule("request", manifest.AppBehavior{FinishRequestPhase: true})}},
		"every response behavior": {rules: []manifest.AppRule{rule("response",
			manifest.AppBehavior{AddResponseHeader: "X-Status: ${status} ${upstream_http_server}"},
			manifest.AppBehavior{FilterResponseHeader: "Server"},
			manifest.AppBehavior{Deliver: true},
		)}},
		"unknown phase": {
			rules: []manifest.AppRule{rule("reponse", manifest.AppBehavior{Deliver: true})},
			want:  []FieldError{{Path: "spec.rules[0].phase", Message: `unknown phase "reponse"; use request or response`}},
		},
		"no key": {
			rules: []manifest.AppRule{rule("", manifest.AppBehavior{})},
			want:  []FieldError{{Path: "spec.rules[0].behaviors[0]", Message: "a behavior sets exactly one key (argument-less behaviors take true); this one sets none"}},
		},
		"two keys": {
			rules: []manifest.AppRule{rule("", manifest.AppBehavior{Deny: true, AddRequestHeader: "A: b"})},
			want:  []FieldError{{Path: "spec.rules[0].behaviors[0]", Message: "a behavior sets exactly one key; this one sets addRequestHeader, deny"}},
		},
		"no behaviors": {
			rules: []manifest.AppRule{rule("")},
			want:  []FieldError{{Path: "spec.rules[0].behaviors", Message: "a rule needs at least one behavior"}},
		},
		"response behavior in request phase": {
			rules: []manifest.AppRule{rule("", manifest.AppBehavior{AddResponseHeader: "A: b"})},
			want:  []FieldError{{Path: "spec.rules[0].behaviors[0].addResponseHeader", Message: "addResponseHeader is a response-phase behavior; this rule runs in the request phase"}},
		},
		"request behaviors in response phase": {
			rules: []manifest.AppRule{rule("response", manifest.AppBehavior{Deny: true}, manifest.AppBehavior{FilterRequestHeader: "A"}, manifest.AppBehavior{RedirectHTTPToHTTPS: true})},
			want: []FieldError{
				{Path: "spec.rules[0].behaviors[0].deny", Message: "deny is a request-phase behavior; this rule runs in the response phase"},
				{Path: "spec.rules[0].behaviors[1].filterRequestHeader", Message: "filterRequestHeader is a request-phase behavior; this rule runs in the response phase"},
				{Path: "spec.rules[0].behaviors[2].redirectHttpToHttps", Message: "redirectHttpToHttps is a request-phase behavior; this rule runs in the response phase"},
			},
		},
		"header without colon": {
			rules: []manifest.AppRule{rule("", manifest.AppBehavior{AddRequestHeader: "Client-Cert ${ssl_client_cert}"})},
			want:  []FieldError{{Path: "spec.rules[0].behaviors[0].addRequestHeader", Message: `"Client-Cert ${ssl_client_cert}" is not a header "Name: value"`}},
		},
		"invalid header name": {
			rules: []manifest.AppRule{rule("", manifest.AppBehavior{AddRequestHeader: "Client Cert: x"})},
			want:  []FieldError{{Path: "spec.rules[0].behaviors[0].addRequestHeader", Message: `invalid header name "Client Cert": use letters, digits, - and _`}},
		},
		"filter with a value": {
			rules: []manifest.AppRule{rule("", manifest.AppBehavior{FilterRequestHeader: "X-A: b"})},
			want:  []FieldError{{Path: "spec.rules[0].behaviors[0].filterRequestHeader", Message: `filterRequestHeader takes a header name only, not "X-A: b"`}},
		},
		"argument too long": {
			rules: []manifest.AppRule{rule("", manifest.AppBehavior{AddRequestHeader: "X-A: " + strings.Repeat("a", 1596)})},
			want:  []FieldError{{Path: "spec.rules[0].behaviors[0].addRequestHeader", Message: "the argument is 1601 characters long; the limit is 1600"}},
		},
		"argument at the limit": {
			rules: []manifest.AppRule{rule("", manifest.AppBehavior{AddRequestHeader: "X-A: " + strings.Repeat("a", 1595)})},
		},
		"reserved headers": {
			rules: []manifest.AppRule{rule("",
				manifest.AppBehavior{AddRequestHeader: "host: x"},
				manifest.AppBehavior{FilterRequestHeader: "CONNECTION"},
				manifest.AppBehavior{AddRequestHeader: "Range: bytes=0-1"},
				manifest.AppBehavior{AddRequestHeader: "x_forwarded_for: 1.2.3.4"},
				manifest.AppBehavior{FilterRequestHeader: "Cdn_Loop"},
				manifest.AppBehavior{AddRequestHeader: "Transfer-Encoding: chunked"},
			), rule("response", manifest.AppBehavior{FilterResponseHeader: "content-length"})},
			want: []FieldError{
				{Path: "spec.rules[0].behaviors[0].addRequestHeader", Message: `header "host" cannot be added or filtered: the edge manages it`},
				{Path: "spec.rules[0].behaviors[1].filterRequestHeader", Message: `header "CONNECTION" cannot be added or filtered: the edge manages it`},
				{Path: "spec.rules[0].behaviors[2].addRequestHeader", Message: `header "Range" cannot be added or filtered: the edge manages it`},
				{Path: "spec.rules[0].behaviors[3].addRequestHeader", Message: `header "x_forwarded_for" cannot be added or filtered: the edge manages it`},
				{Path: "spec.rules[0].behaviors[4].filterRequestHeader", Message: `header "Cdn_Loop" cannot be added or filtered: the edge manages it`},
				{Path: "spec.rules[0].behaviors[5].addRequestHeader", Message: `header "Transfer-Encoding" cannot be added or filtered: the edge manages it`},
				{Path: "spec.rules[1].behaviors[0].filterResponseHeader", Message: `header "content-length" cannot be added or filtered: the edge manages it`},
			},
		},
		"variables in behavior arguments": {
			rules: []manifest.AppRule{rule("",
				manifest.AppBehavior{AddRequestHeader: "X-Subject: ${ssl_client_sdn}"},
				manifest.AppBehavior{RewriteRequest: "/v2${uri"},
				manifest.AppBehavior{RedirectTo302: "https://${host}${status}"},
			)},
			want: []FieldError{
				{Path: "spec.rules[0].behaviors[0].addRequestHeader", Message: `unknown variable "${ssl_client_sdn}"; did you mean "${ssl_client_s_dn}"?`},
				{Path: "spec.rules[0].behaviors[1].rewriteRequest", Message: `unterminated "${" in "/v2${uri": a variable is written ${name}`},
				{Path: "spec.rules[0].behaviors[2].redirectTo302", Message: `variable "${status}" is only available in the response phase`},
			},
		},
		"bad rewrite and redirect": {
			rules: []manifest.AppRule{rule("", manifest.AppBehavior{RewriteRequest: "v2/x"}), rule("", manifest.AppBehavior{RedirectTo301: "ftp://x"})},
			want: []FieldError{
				{Path: "spec.rules[0].behaviors[0].rewriteRequest", Message: `rewriteRequest must be a path starting with "/", not "v2/x"`},
				{Path: "spec.rules[1].behaviors[0].redirectTo301", Message: `redirectTo301 must be an http(s) URL or a path starting with "/", not "ftp://x"`},
			},
		},
		"unreachable behaviors": {
			rules: []manifest.AppRule{
				rule("", manifest.AppBehavior{AddRequestHeader: "A: 1"}, manifest.AppBehavior{Deny: true}, manifest.AppBehavior{AddRequestHeader: "B: 1"}, manifest.AppBehavior{NoContent: true}),
				rule("response", manifest.AppBehavior{Deliver: true}, manifest.AppBehavior{AddResponseHeader: "B: 1"}),
				rule("", manifest.AppBehavior{RedirectHTTPToHTTPS: true}, manifest.AppBehavior{AddRequestHeader: "B: 1"}),
			},
			want: []FieldError{
				{Path: "spec.rules[0].behaviors[2]", Message: "unreachable behavior: behaviors[1] (deny) already ends the request phase", Warning: true},
				{Path: "spec.rules[0].behaviors[3]", Message: "unreachable behavior: behaviors[1] (deny) already ends the request phase", Warning: true},
				{Path: "spec.rules[1].behaviors[1]", Message: "unreachable behavior: behaviors[0] (deliver) already ends the response phase", Warning: true},
			},
		},
		"criteria errors": {
			rules: []manifest.AppRule{{Name: "r", Criteria: [][]manifest.Criterion{{crit("", "${remote_addr}", "is_in_list", "nope")}}, Behaviors: []manifest.AppBehavior{{Deny: true}}}},
			want:  []FieldError{{Path: "spec.rules[0].criteria[0][0].argument", Message: `unknown NetworkList "nope"`}},
		},
		"inactive rule still checked": {
			rules: []manifest.AppRule{{Name: "r", Active: ptr(false), Behaviors: []manifest.AppBehavior{{AddRequestHeader: "X: ${nope}"}}}},
			want:  []FieldError{{Path: "spec.rules[0].behaviors[0].addRequestHeader", Message: `unknown variable "${nope}"`}},
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			a, got := CompileApplication(&manifest.ApplicationSpec{Rules: tt.rules}, testLists)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
			if (a == nil) != HasErrors(got) {
				t.Errorf("application = %v with errors %v", a, got)
			}
		})
	}
}

func mustApplication(t testing.TB, rules ...manifest.AppRule) *Application {
	t.Helper()
	a, errs := CompileApplication(&manifest.ApplicationSpec{Rules: rules}, testLists)
	if HasErrors(errs) {
		t.Fatal(errs)
	}
	return a
}

// requestResult is RequestActions without its private storage, for cmp.
type requestResult struct {
	Add            []Header
	Filter         []string
	Path, Location string
	Status         int
	Rule           string
}

func result(a *RequestActions) requestResult {
	return requestResult{Add: a.Add, Filter: a.Filter, Path: a.Path, Location: a.Location, Status: a.Status, Rule: a.Rule}
}

func TestEvaluateRequest(t *testing.T) {
	t.Parallel()
	add := func(s string) manifest.AppBehavior { return manifest.AppBehavior{AddRequestHeader: s} }
	when := func(uri string) [][]manifest.Criterion {
		return [][]manifest.Criterion{{crit("", "${uri}", "starts_with", uri)}}
	}
	a := mustApplication(t,
		manifest.AppRule{Name: "identity", Criteria: [][]manifest.Criterion{{crit("", "${ssl_client_verify}", "is_equal", "SUCCESS")}}, Behaviors: []manifest.AppBehavior{
			add("Client-Cert-Subject: ${ssl_client_s_dn_parsed}"),
			add("X-Client: ${ssl_client_s_dn_parsed}@${remote_addr}"),
			add("x-static: literal"),
		}},
		manifest.AppRule{Name: "inactive", Active: ptr(false), Behaviors: []manifest.AppBehavior{{Deny: true}}},
		manifest.AppRule{Name: "filter", Criteria: when("/filter"), Behaviors: []manifest.AppBehavior{{FilterRequestHeader: "x_client"}, {FilterRequestHeader: "Accept"}}},
		manifest.AppRule{Name: "rewrite", Criteria: when("/v1/"), Behaviors: []manifest.AppBehavior{{RewriteRequest: "/v2${uri}?${args}"}, {RewriteRequest: "/v3${uri}"}}},
		manifest.AppRule{Name: "moved", Criteria: when("/old"), Behaviors: []manifest.AppBehavior{{RedirectTo301: "https://${host}/new?from=${uri}"}}},
		manifest.AppRule{Name: "login", Criteria: when("/login"), Behaviors: []manifest.AppBehavior{{RedirectTo302: "/sso"}}},
		manifest.AppRule{Name: "https", Criteria: when("/secure"), Behaviors: []manifest.AppBehavior{{RedirectHTTPToHTTPS: true}, add("X-After: https")}},
		manifest.AppRule{Name: "deny", Criteria: when("/deny"), Behaviors: []manifest.AppBehavior{{Deny: true}}},
		manifest.AppRule{Name: "empty", Criteria: when("/empty"), Behaviors: []manifest.AppBehavior{{NoContent: true}}},
		manifest.AppRule{Name: "deliver", Criteria: when("/deliver"), Behaviors: []manifest.AppBehavior{{Deliver: true}}},
		manifest.AppRule{Name: "finish", Criteria: when("/finish"), Behaviors: []manifest.AppBehavior{{FinishRequestPhase: true}}},
		manifest.AppRule{Name: "late", Behaviors: []manifest.AppBehavior{add("X-Late: yes"), {FilterRequestHeader: "X-Static"}, add("X-Static: again")}},
	)
	identity := []Header{
		{Name: "Client-Cert-Subject", Value: "partner-app"},
		{Name: "X-Client", Value: "partner-app@203.0.113.9"},
		{Name: "X-Static", Value: "literal"},
	}
	// The last rule adds X-Late, filters X-Static (added by the first rule)
	// and adds it again.
	all := func(extra ...Header) []Header {
		return append(append(slices.Clone(identity[:2]), extra...), Header{"X-Late", "yes"}, Header{"X-Static", "again"})
	}
	plain := testRequest("GET", "/secure/x?y=1")
	plain.Scheme = "http"
	tests := map[string]struct {
		r    *Request
		want requestResult
	}{
		"headers": {r: testRequest("GET", "/"), want: requestResult{Add: all(), Filter: []string{"X-Static"}}},
		"filter removes earlier adds in any spelling": {
			r: testRequest("GET", "/filter"),
			want: requestResult{
				Add:    []Header{identity[0], {"X-Late", "yes"}, {"X-Static", "again"}},
				Filter: []string{"X_client", "Accept", "X-Static"},
			},
		},
		"rewrite, last wins": {
			r:    testRequest("GET", "/v1/accounts?x=1"),
			want: requestResult{Add: all(), Filter: []string{"X-Static"}, Path: "/v3/v1/accounts"},
		},
		"redirect 301": {
			r:    testRequest("GET", "/old/page"),
			want: requestResult{Add: identity, Status: 301, Location: "https://api.bank.example/new?from=/old/page", Rule: "moved"},
		},
		"redirect 302": {r: testRequest("GET", "/login"), want: requestResult{Add: identity, Status: 302, Location: "/sso", Rule: "login"}},
		"http to https": {
			r:    plain,
			want: requestResult{Add: identity, Status: 301, Location: "https://api.bank.example/secure/x?y=1", Rule: "https"},
		},
		"already https": {
			r:    testRequest("GET", "/secure/x"),
			want: requestResult{Add: all(Header{"X-After", "https"}), Filter: []string{"X-Static"}},
		},
		"deny":    {r: testRequest("GET", "/deny"), want: requestResult{Add: identity, Status: 403, Rule: "deny"}},
		"204":     {r: testRequest("GET", "/empty"), want: requestResult{Add: identity, Status: 204, Rule: "empty"}},
		"deliver": {r: testRequest("GET", "/deliver"), want: requestResult{Add: identity, Rule: "deliver"}},
		"finish":  {r: testRequest("GET", "/finish"), want: requestResult{Add: identity, Rule: "finish"}},
	}
	var out RequestActions // reused across cases, as the serve path does
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			a.EvaluateRequest(tt.r, &out)
			if diff := cmp.Diff(tt.want, result(&out), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	t.Run("nil application", func(t *testing.T) {
		var nilApp *Application
		nilApp.EvaluateRequest(plain, &out)
		if diff := cmp.Diff(requestResult{}, result(&out), cmpopts.EquateEmpty()); diff != "" {
			t.Error(diff)
		}
	})
}

func TestEvaluateResponse(t *testing.T) {
	t.Parallel()
	a := mustApplication(t,
		manifest.AppRule{Name: "status", Phase: "response", Behaviors: []manifest.AppBehavior{
			{AddResponseHeader: "X-Edge-Status: ${status} from ${upstream_status}"},
			{AddResponseHeader: "X-Server: ${upstream_http_server}"},
			{FilterResponseHeader: "Server"},
		}},
		manifest.AppRule{Name: "errors", Phase: "response", Criteria: [][]manifest.Criterion{{crit("", "${upstream_status}", "starts_with", "5")}}, Behaviors: []manifest.AppBehavior{
			{FilterResponseHeader: "x_server"}, {Deliver: true},
		}},
		manifest.AppRule{Name: "cache", Phase: "response", Criteria: [][]manifest.Criterion{{crit("", "${sent_http_cache_control}", "does_not_exist")}}, Behaviors: []manifest.AppBehavior{
			{AddResponseHeader: "Cache-Control: no-store"},
		}},
		manifest.AppRule{Name: "request rule", Behaviors: []manifest.AppBehavior{{AddRequestHeader: "X-Request: 1"}}},
	)
	type result struct {
		Add    []Header
		Filter []string
		Rule   string
	}
	tests := map[string]struct {
		resp ResponseView
		want result
	}{
		"ok": {
			resp: ResponseView{Status: 200, UpstreamStatus: 200, Header: HeaderMap{"Server": {"origin"}}, UpstreamHeader: HeaderMap{"Server": {"origin"}}},
			want: result{Add: []Header{{"X-Edge-Status", "200 from 200"}, {"X-Server", "origin"}, {"Cache-Control", "no-store"}}, Filter: []string{"Server"}},
		},
		"error delivers": {
			resp: ResponseView{Status: 502, UpstreamStatus: 503, Header: HeaderMap{"Cache-Control": {"max-age=1"}}},
			want: result{Add: []Header{{"X-Edge-Status", "502 from 503"}}, Filter: []string{"Server", "X_server"}, Rule: "errors"},
		},
		"sent header present": {
			resp: ResponseView{Status: 200, UpstreamStatus: 200, Header: HeaderMap{"Cache-Control": {"max-age=1"}}},
			want: result{Add: []Header{{"X-Edge-Status", "200 from 200"}, {"X-Server", ""}}, Filter: []string{"Server"}},
		},
	}
	var out ResponseActions
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			a.EvaluateResponse(testRequest("GET", "/"), &tt.resp, &out)
			if diff := cmp.Diff(tt.want, result{out.Add, out.Filter, out.Rule}, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestHeaderNames(t *testing.T) {
	t.Parallel()
	a := mustApplication(t,
		manifest.AppRule{Name: "a", Behaviors: []manifest.AppBehavior{{AddRequestHeader: "client-cert: ${ssl_client_cert}"}, {FilterRequestHeader: "X-Internal"}}},
		manifest.AppRule{Name: "b", Active: ptr(false), Behaviors: []manifest.AppBehavior{{AddRequestHeader: "Client-Cert-Subject: ${ssl_client_s_dn}"}, {AddRequestHeader: "Client-Cert: again"}}},
		manifest.AppRule{Name: "c", Behaviors: []manifest.AppBehavior{{AddRequestHeader: "x_spiffe_id: ${ssl_client_san_uri}"}}},
		manifest.AppRule{Name: "d", Phase: "response", Behaviors: []manifest.AppBehavior{{AddResponseHeader: "X-Response: 1"}}},
	)
	want := []string{"Client-Cert", "Client-Cert-Subject", "X-Internal", "X_spiffe_id"}
	if diff := cmp.Diff(want, a.strippedNames()); diff != "" {
		t.Errorf("strippedNames (-want +got):\n%s", diff)
	}
	h := HeaderMap{
		"Client-Cert": {"forged"}, "CLIENT_CERT": {"forged"}, "Client_cert_subject": {"forged"}, "X-Spiffe-Id": {"forged"},
		"X-Internal": {"forged"}, "Accept": {"*/*"}, "Client-Certificate": {"kept"}, "X-Response": {"kept"},
	}
	a.StripHeaders(h)
	wantH := HeaderMap{"Accept": {"*/*"}, "Client-Certificate": {"kept"}, "X-Response": {"kept"}}
	if diff := cmp.Diff(wantH, h); diff != "" {
		t.Errorf("StripHeaders (-want +got):\n%s", diff)
	}
	var nilApp *Application
	if nilApp.strippedNames() != nil {
		t.Error("nil application has no header names")
	}
}

func BenchmarkHeaderTemplateTwoVariables(b *testing.B) {
	a, errs := CompileApplication(&manifest.ApplicationSpec{Rules: []manifest.AppRule{{
		Name:      "identity",
		Behaviors: []manifest.AppBehavior{{AddRequestHeader: "X-Client: ${ssl_client_s_dn_parsed}@${remote_addr}"}},
	}}}, nil)
	if errs != nil {
		b.Fatal(errs)
	}
	r := testRequest("GET", "/")
	var out RequestActions
	b.ReportAllocs()
	for b.Loop() {
		a.EvaluateRequest(r, &out)
	}
	if out.Add[0].Value != "partner-app@203.0.113.9" {
		b.Fatal(out.Add)
	}
}

func BenchmarkFirewallOneRule(b *testing.B) {
	f := mustFirewall(b, manifest.FirewallRule{
		Name: "deny unverified",
		Criteria: [][]manifest.Criterion{{
			crit("", "host", "is_equal", "api.bank.example"),
			crit("and", "client_certificate_validation", "is_not_equal", "true"),
		}},
		Behaviors: []manifest.FirewallBehavior{{Deny: true}},
	})
	r := testRequest("GET", "/accounts")
	b.ReportAllocs()
	for b.Loop() {
		if d := f.Evaluate(r); d.Action != Allow {
			b.Fatal(d)
		}
	}
}

func BenchmarkFirewallRateLimitPerClient(b *testing.B) {
	f := mustFirewall(b, manifest.FirewallRule{Name: "limit", Behaviors: []manifest.FirewallBehavior{
		{SetRateLimit: &manifest.RateLimit{Type: "second", LimitBy: "clientIp", AverageRateLimit: 1e9}},
	}})
	r := testRequest("GET", "/")
	b.ReportAllocs()
	for b.Loop() {
		f.Evaluate(r)
	}
}

func TestFirewallIndexed(t *testing.T) {
	t.Parallel()
	var rules []manifest.FirewallRule
	for i := range 10 {
		rules = append(rules, manifest.FirewallRule{
			Name:      fmt.Sprintf("service %d", i),
			Criteria:  [][]manifest.Criterion{{crit("", "request_uri", "starts_with", fmt.Sprintf("/svc-%d/", i)), crit("and", "header_user_agent", "matches", "bot")}},
			Behaviors: []manifest.FirewallBehavior{{Deny: true}},
		})
	}
	rules = append(rules,
		manifest.FirewallRule{
			Name:      "limit partners",
			Criteria:  [][]manifest.Criterion{{crit("", "network", "is_in_list", "partners")}},
			Behaviors: []manifest.FirewallBehavior{{SetRateLimit: &manifest.RateLimit{Type: "minute", LimitBy: "global", AverageRateLimit: 3}}},
		},
		manifest.FirewallRule{
			Name:      "teapot",
			Criteria:  [][]manifest.Criterion{{crit("", "host", "is_equal", "Tea.Example"), crit("or", "request_uri", "is_equal", "/tea")}},
			Behaviors: []manifest.FirewallBehavior{{SetCustomResponse: &manifest.CustomResponse{StatusCode: 418, ContentBody: "short and stout"}}},
		},
	)
	f := mustFirewall(t, rules...)
	if f.index == nil {
		t.Fatal("not indexed")
	}
	// Rate limits hold state: the unindexed firewall has its own.
	unindexed := mustFirewall(t, rules...)
	unindexed.index = nil
	now := time.Unix(1e9, 0)
	f.setClock(func() time.Time { return now })
	unindexed.setClock(func() time.Time { return now })
	requests := []*Request{
		testRequest("GET", "/svc-3/x", "User-Agent", "bot/1"),
		testRequest("GET", "/svc-3/x", "User-Agent", "curl"),
		testRequest("GET", "/svc-1/x", "User-Agent", "a bot"),
		testRequest("GET", "/tea"),
		func() *Request { r := testRequest("GET", "/"); r.Host = "tea.example"; return r }(),
		testRequest("GET", "/svc-9/", "User-Agent", "bot"),
		testRequest("GET", "/"),
		testRequest("GET", "/svc-10/", "User-Agent", "bot"),
	}
	var got, want []FirewallDecision
	for _, r := range requests {
		got = append(got, f.Evaluate(r))
		want = append(want, unindexed.Evaluate(r))
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("decisions (-unindexed +indexed):\n%s", diff)
	}
	if got[0].Rule != "service 3" || got[3].Rule != "teapot" || got[7].Action != RateLimited {
		t.Errorf("decisions do not exercise the rules: %+v", got)
	}
}

func TestEvaluateResponseIndexed(t *testing.T) {
	t.Parallel()
	var rules []manifest.AppRule
	for i := range 10 {
		rules = append(rules, manifest.AppRule{
			Name:  fmt.Sprintf("status %d", 500+i),
			Phase: "response",
			Criteria: [][]manifest.Criterion{{
				crit("", "${upstream_status}", "is_equal", fmt.Sprint(500+i)),
				crit("or", "${upstream_http_x_route}", "starts_with", fmt.Sprintf("r%d-", i)),
			}},
			Behaviors: []manifest.AppBehavior{{AddResponseHeader: fmt.Sprintf("X-Rule: %d ${upstream_http_x_route}", i)}},
		})
	}
	rules = append(rules, manifest.AppRule{
		Name: "deliver errors", Phase: "response",
		Criteria:  [][]manifest.Criterion{{crit("", "${status}", "starts_with", "5")}},
		Behaviors: []manifest.AppBehavior{{Deliver: true}},
	}, manifest.AppRule{
		Name: "after", Phase: "response",
		Criteria:  [][]manifest.Criterion{{crit("", "${sent_http_server}", "does_not_exist")}},
		Behaviors: []manifest.AppBehavior{{AddResponseHeader: "X-After: 1"}},
	})
	a := mustApplication(t, rules...)
	if a.responseIndex == nil {
		t.Fatal("not indexed")
	}
	unindexed := mustApplication(t, rules...)
	unindexed.responseIndex = nil
	all := make([]criteria, len(a.response))
	for i, rule := range a.response {
		all[i] = rule.crit
	}
	views := map[string]*ResponseView{
		"ok":              {Status: 200, UpstreamStatus: 200},
		"503":             {Status: 503, UpstreamStatus: 503},
		"route":           {Status: 200, UpstreamStatus: 200, UpstreamHeader: HeaderMap{"X-Route": {"r4-blue"}}},
		"route and 501":   {Status: 502, UpstreamStatus: 501, UpstreamHeader: HeaderMap{"X-Route": {"r7-"}}, Header: HeaderMap{"Server": {"o"}}},
		"no route prefix": {Status: 200, UpstreamStatus: 200, UpstreamHeader: HeaderMap{"X-Route": {"r1"}}},
	}
	var out, want ResponseActions
	for name, resp := range views {
		t.Run(name, func(t *testing.T) {
			r := testRequest("GET", "/")
			checkVisits(t, all, a.responseIndex, r, resp)
			a.EvaluateResponse(r, resp, &out)
			unindexed.EvaluateResponse(r, resp, &want)
			type result struct {
				Add    []Header
				Filter []string
				Rule   string
			}
			if diff := cmp.Diff(result{want.Add, want.Filter, want.Rule}, result{out.Add, out.Filter, out.Rule}); diff != "" {
				t.Errorf("(-unindexed +indexed):\n%s", diff)
			}
		})
	}
}

// TestPooledRequestState sends consecutive requests through one Request and
// one RequestActions and ResponseActions, reused without clearing as the
// serve path's pooled state may be, through a firewall and an application
// that give their memo slots to different variables. Between requests the
// values that the memo, the shared comparison results and the index read
// change: every evaluation must see its own request, as a fresh state does.
func TestPooledRequestState(t *testing.T) {
	t.Parallel()
	// The firewall reads User-Agent most (memo slot 1).
	f := mustFirewall(t,
		manifest.FirewallRule{Name: "bots", Criteria: [][]manifest.Criterion{{crit("", "header_user_agent", "starts_with", "bot")}}, Behaviors: []manifest.FirewallBehavior{{Deny: true}}},
		manifest.FirewallRule{Name: "crawlers", Criteria: [][]manifest.Criterion{{crit("", "header_user_agent", "matches", "crawl")}}, Behaviors: []manifest.FirewallBehavior{{Drop: true}}},
	)
	// The application's request phase reads X-Tenant most (memo slot 1),
	// shares the host comparison between its rules and is indexed on the
	// path; its response phase reads the origin's X-Route most.
	var rules []manifest.AppRule
	for i := range 10 {
		rules = append(rules, manifest.AppRule{
			Name: fmt.Sprintf("service %d", i),
			Criteria: [][]manifest.Criterion{{
				crit("", "${host}", "is_equal", "api.bank.example"),
				crit("and", "${uri}", "starts_with", fmt.Sprintf("/service-%d/", i)),
				crit("and", "${http_x_tenant}", "does_not_start_with", "blocked"),
			}},
			Behaviors: []manifest.AppBehavior{{AddRequestHeader: fmt.Sprintf("X-Service-%d: ${http_x_tenant}", i)}},
		}, manifest.AppRule{
			Name: fmt.Sprintf("route %d", i), Phase: "response",
			Criteria:  [][]manifest.Criterion{{crit("", "${upstream_http_x_route}", "is_equal", fmt.Sprintf("r%d", i))}},
			Behaviors: []manifest.AppBehavior{{AddResponseHeader: "X-Route-Tenant: ${upstream_http_x_route}/${http_x_tenant}"}},
		})
	}
	a := mustApplication(t, rules...)
	if a.requestIndex == nil || a.responseIndex == nil {
		t.Fatal("not indexed")
	}

	type step struct {
		host, target, tenant, agent, route string
	}
	type outcome struct {
		Firewall FirewallDecision
		Request  requestResult
		Response []Header
	}
	serve := func(r *Request, acts *RequestActions, resp *ResponseActions, s step) outcome {
		var o outcome
		o.Firewall = f.Evaluate(r)
		if o.Firewall.Action != Allow {
			return o
		}
		a.EvaluateRequest(r, acts)
		o.Request = result(acts)
		view := &ResponseView{Status: 200, UpstreamStatus: 200, UpstreamHeader: HeaderMap{"X-Route": {s.route}}}
		a.EvaluateResponse(r, view, resp)
		o.Response = slices.Clone(resp.Add)
		o.Request.Add = slices.Clone(o.Request.Add)
		return o
	}
	fresh := func(s step) *Request {
		r := testRequest("GET", s.target, "X-Tenant", s.tenant, "User-Agent", s.agent)
		r.Host = s.host
		return r
	}
	steps := []step{
		{"api.bank.example", "/service-3/x", "t-3", "curl", "r1"},
		{"api.bank.example", "/service-5/y", "t-5", "curl", "r2"},   // another rule, tenant and route
		{"other.example", "/service-5/y", "t-5", "curl", "r2"},      // the shared host comparison fails
		{"api.bank.example", "/service-5/y", "blocked", "curl", ""}, // same path, tenant refused
		{"api.bank.example", "/service-5/y", "t-6", "bot/2", "r3"},  // the firewall denies
		{"api.bank.example", "/service-7/", "t-7", "curl", "r7"},
		{"api.bank.example", "/nothing", "t-7", "curl", "r7"},
	}
	pooled := fresh(steps[0])
	var acts RequestActions
	var resp ResponseActions
	var got, want []outcome
	for _, s := range steps {
		// Reuse the Request in place, memo and all.
		next := fresh(s)
		pooled.Method, pooled.Target, pooled.Path, pooled.Query, pooled.Proto, pooled.Header, pooled.Host =
			next.Method, next.Target, next.Path, next.Query, next.Proto, next.Header, next.Host
		got = append(got, serve(pooled, &acts, &resp, s))
		var freshActs RequestActions
		var freshResp ResponseActions
		want = append(want, serve(fresh(s), &freshActs, &freshResp, s))
	}
	if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("pooled state (-fresh +pooled):\n%s", diff)
	}
	wantAdds := [][]Header{
		{{"X-Service-3", "t-3"}}, {{"X-Service-5", "t-5"}}, nil, nil, nil, {{"X-Service-7", "t-7"}}, nil,
	}
	wantResp := [][]Header{
		{{"X-Route-Tenant", "r1/t-3"}}, {{"X-Route-Tenant", "r2/t-5"}}, {{"X-Route-Tenant", "r2/t-5"}}, nil, nil,
		{{"X-Route-Tenant", "r7/t-7"}}, {{"X-Route-Tenant", "r7/t-7"}},
	}
	for i, o := range got {
		if diff := cmp.Diff(wantAdds[i], o.Request.Add, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("step %d request headers (-want +got):\n%s", i, diff)
		}
		if diff := cmp.Diff(wantResp[i], o.Response, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("step %d response headers (-want +got):\n%s", i, diff)
		}
	}
	if got[4].Firewall.Rule != "bots" {
		t.Errorf("step 4: firewall %+v, want the bots rule", got[4].Firewall)
	}
}

// TestAppendVariantKey: case and '_' fold, nothing else changes, and a
// buffer with room is used as is.
func TestAppendVariantKey(t *testing.T) {
	for in, want := range map[string]string{"X_Forwarded_For": "x-forwarded-for", "ssl-client-s-dn": "ssl-client-s-dn", "Ünï_X": "Ünï-x", "": ""} {
		if got := string(AppendVariantKey(nil, in)); got != want || variantKey(in) != want || !sameVariant(in, want) {
			t.Errorf("%q: AppendVariantKey %q, variantKey %q, want %q", in, got, variantKey(in), want)
		}
	}
	var buf [32]byte
	if n := testing.AllocsPerRun(10, func() { AppendVariantKey(buf[:0], "X_Client_Cert") }); n != 0 {
		t.Errorf("AppendVariantKey allocates %v times with room in dst", n)
	}
}
