package rules

import (
	"fmt"
	"math"
	"mime"
	"net/netip"
	"time"
	"unicode/utf8"

	"github.com/edgectl/edgectl/internal/headersafe"
	"github.com/edgectl/edgectl/pkg/manifest"
)

// Action is what the firewall decided for a request.
type Action uint8

// Firewall actions.
const (
	// Allow lets the request continue to the application.
	Allow Action = iota
	// Deny answers 403 Forbidden.
	Deny
	// Drop closes the connection without a response.
	Drop
	// RateLimited answers 429 Too Many Requests.
	RateLimited
	// Custom answers with the rule's custom response.
	Custom
)

var actionNames = [...]string{"allow", "deny", "drop", "rate_limited", "custom"}

// String returns the action's name as used in logs and metrics.
func (a Action) String() string {
	if int(a) < len(actionNames) {
		return actionNames[a]
	}
	return fmt.Sprintf("action(%d)", a)
}

// FirewallDecision is the outcome of the firewall for one request.
type FirewallDecision struct {
	Action Action
	// Rule is the name of the rule that decided; empty for Allow by default.
	Rule string
	// Status, ContentType and Body describe the response to send (none for
	// Allow and Drop).
	Status      int
	ContentType string
	Body        string
	// RetryAfter is the number of seconds until the rate limit lets a
	// request through again (RateLimited only).
	RetryAfter int
}

// Firewall is a compiled firewall. It is safe for concurrent use; its rate
// limiters hold the only mutable state.
type Firewall struct {
	rules []fwRule
	// index selects the rules a request visits; nil visits all.
	index *ruleIndex
	now   func() time.Time
}

type fwRule struct {
	name      string
	crit      criteria
	behaviors []fwBehavior
}

type fwBehavior struct {
	action      Action
	status      int
	contentType string
	body        string
	lim         *limiter
}

// CompileFirewall compiles a firewall; lists are the NetworkLists that
// is_in_list may name.
func CompileFirewall(spec *manifest.FirewallSpec, lists map[string]*NetworkList) (*Firewall, []FieldError) {
	f := &Firewall{now: time.Now}
	var errs []FieldError
	for i, rule := range spec.Rules {
		path := fmt.Sprintf("spec.rules[%d]", i)
		crit, cerrs := compileCriteria(path, rule.Criteria, lists, engine{firewall: true})
		errs = append(errs, cerrs...)
		if len(rule.Behaviors) == 0 {
			errs = append(errs, FieldError{Path: path + ".behaviors", Message: "a rule needs at least one behavior"})
		}
		fr := fwRule{name: rule.Name, crit: crit}
		terminal := -1
		for j, b := range rule.Behaviors {
			bpath := fmt.Sprintf("%s.behaviors[%d]", path, j)
			fb, berrs := compileFirewallBehavior(bpath, b)
			errs = append(errs, berrs...)
			if terminal >= 0 {
				errs = append(errs, FieldError{Path: bpath, Warning: true, Message: fmt.Sprintf("unreachable behavior: behaviors[%d] (%s) already ends the rule", terminal, fwBehaviorName(rule.Behaviors[terminal]))})
			} else if fb.action != RateLimited && len(berrs) == 0 {
				terminal = j
			}
			fr.behaviors = append(fr.behaviors, fb)
		}
		if rule.Active == nil || *rule.Active {
			f.rules = append(f.rules, fr)
		}
	}
	if HasErrors(errs) {
		return nil, errs
	}
	all := make([]criteria, len(f.rules))
	for i, r := range f.rules {
		all[i] = r.crit
	}
	shareConds(all)
	for i := range f.rules {
		f.rules[i].crit = all[i]
	}
	f.index = buildIndex(all, minIndexedRules)
	assignSlots(all, nil, f.index)
	return f, errs
}

func fwBehaviorName(b manifest.FirewallBehavior) string {
	switch {
	case b.Deny:
		return "deny"
	case b.Drop:
		return "drop"
	case b.SetRateLimit != nil:
		return "setRateLimit"
	case b.SetCustomResponse != nil:
		return "setCustomResponse"
	}
	return "?"
}

func compileFirewallBehavior(path string, b manifest.FirewallBehavior) (fwBehavior, []FieldError) {
	var errs []FieldError
	bad := func(field, format string, args ...any) {
		errs = append(errs, FieldError{Path: path + field, Message: fmt.Sprintf(format, args...)})
	}
	n := 0
	for _, set := range []bool{b.Deny, b.Drop, b.SetRateLimit != nil, b.SetCustomResponse != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		bad("", "a behavior sets exactly one of deny, drop, setRateLimit, setCustomResponse (deny and drop take true); this one sets %d", n)
		return fwBehavior{}, errs
	}
	switch {
	case b.Deny:
		return fwBehavior{action: Deny, status: statusForbidden, contentType: DefaultContentType, body: "Forbidden\n"}, nil
	case b.Drop:
		return fwBehavior{action: Drop}, nil
	case b.SetRateLimit != nil:
		rl := b.SetRateLimit
		var period time.Duration
		switch rl.Type {
		case "second":
			period = time.Second
		case "minute":
			period = time.Minute
		default:
			bad(".setRateLimit.type", "unknown rate limit type %q; use second or minute", rl.Type)
		}
		if rl.LimitBy != "clientIp" && rl.LimitBy != "global" {
			bad(".setRateLimit.limitBy", "unknown limitBy %q; use clientIp or global", rl.LimitBy)
		}
		if rl.AverageRateLimit < 1 {
			bad(".setRateLimit.averageRateLimit", "averageRateLimit must be at least 1, not %d", rl.AverageRateLimit)
		}
		burst := rl.MaximumBurstSize
		if burst == 0 {
			burst = rl.AverageRateLimit
		}
		if rl.MaximumBurstSize < 0 {
			bad(".setRateLimit.maximumBurstSize", "maximumBurstSize must be at least 1, not %d", rl.MaximumBurstSize)
		}
		if len(errs) > 0 {
			return fwBehavior{action: RateLimited}, errs
		}
		rate := float64(rl.AverageRateLimit) / period.Seconds()
		return fwBehavior{
			action: RateLimited, status: statusTooManyRequests, contentType: DefaultContentType, body: "Too Many Requests\n",
			lim: newLimiter(rate, float64(burst), rl.LimitBy == "global"),
		}, nil
	default:
		cr := b.SetCustomResponse
		if cr.StatusCode < 200 || cr.StatusCode > 499 {
			bad(".setCustomResponse.statusCode", "statusCode must be between 200 and 499, not %d", cr.StatusCode)
		}
		if n := utf8.RuneCountInString(cr.ContentBody); n > MaxCustomBody {
			bad(".setCustomResponse.contentBody", "contentBody is %d characters long; the limit is %d", n, MaxCustomBody)
		}
		ct := cr.ContentType
		if ct == "" {
			ct = DefaultContentType
		} else if _, _, err := mime.ParseMediaType(ct); err != nil || !headersafe.Is(ct) {
			bad(".setCustomResponse.contentType", "invalid content type %q", ct)
		}
		return fwBehavior{action: Custom, status: cr.StatusCode, contentType: ct, body: cr.ContentBody}, errs
	}
}

// Evaluate runs the active rules in order and returns the first decision:
// deny, drop and custom responses end the firewall; a rate limit ends it
// only when it rejects the request, else the next behaviors and rules run.
// A nil firewall allows everything. Evaluate does not allocate, except when
// a rate limit first sees a client.
func (f *Firewall) Evaluate(r *Request) FirewallDecision {
	if f == nil {
		return FirewallDecision{}
	}
	r.resetMemo()
	var now time.Time
	var it ruleIter
	if f.index != nil {
		var buf ruleLists
		it.lists = &buf
		it.start(f.index, r, nil)
	}
	for i := it.next(-1); i < len(f.rules); i = it.next(i) {
		rule := &f.rules[i]
		if !rule.crit.match(r, nil) {
			continue
		}
		for j := range rule.behaviors {
			b := &rule.behaviors[j]
			d := FirewallDecision{Action: b.action, Rule: rule.name, Status: b.status, ContentType: b.contentType, Body: b.body}
			if b.action != RateLimited {
				return d
			}
			if now.IsZero() {
				now = f.now()
			}
			var addr netip.Addr
			if r.Conn != nil {
				addr = r.Conn.Remote.Addr()
			}
			ok, wait := b.lim.allow(addr, now.UnixNano())
			if !ok {
				d.RetryAfter = int(math.Ceil(wait))
				return d
			}
		}
	}
	return FirewallDecision{}
}

// CanDenyUnverified reports whether some active rule denies (deny, drop, or
// a custom response of status 400 or more) on criteria that compare the
// client certificate or its verification: client_certificate_validation,
// ssl_verification_status or an ssl_client_* pin. A Permissive domain whose
// firewall cannot deny unverified clients protects nothing.
func (f *Firewall) CanDenyUnverified() bool {
	if f == nil {
		return false
	}
	for _, rule := range f.rules {
		if !rule.crit.refsClientCert() {
			continue
		}
		for _, b := range rule.behaviors {
			if b.action == Deny || b.action == Drop || b.action == Custom && b.status >= 400 {
				return true
			}
		}
	}
	return false
}
