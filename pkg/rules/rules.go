package rules

import (
	"fmt"
	"math"
	"mime"
	"net/http"
	"net/netip"
	"net/textproto"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/edgectl/edgectl/pkg/pki"

	"github.com/edgectl/edgectl/pkg/manifest"
)

// Limits of behavior arguments.
const (
	MaxHeaderArgument = 1600
	MaxCustomBody     = 500
)

// DefaultContentType is the content type of firewall responses that set none.
const DefaultContentType = "text/plain; charset=utf-8"

// reservedHeaders cannot be added or filtered by rules: the edge and the
// proxy own them (the last ones frame the message and would allow request
// smuggling). Keys are lowercase with '-'.
var reservedHeaders = map[string]bool{
	"host": true, "connection": true, "range": true, "x-forwarded-for": true, "cdn-loop": true,
	"content-length": true, "transfer-encoding": true, "te": true, "trailer": true,
	"upgrade": true, "keep-alive": true, "proxy-connection": true,
}

// ---------------------------------------------------------------------------
// Firewall

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

// HasErrors reports whether errs holds a problem that prevents serving, as
// opposed to warnings only.
func HasErrors(errs []FieldError) bool {
	for _, e := range errs {
		if !e.Warning {
			return true
		}
	}
	return false
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
		return fwBehavior{action: Deny, status: http.StatusForbidden, contentType: DefaultContentType, body: "Forbidden\n"}, nil
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
			action: RateLimited, status: http.StatusTooManyRequests, contentType: DefaultContentType, body: "Too Many Requests\n",
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
		} else if _, _, err := mime.ParseMediaType(ct); err != nil || !pki.IsHeaderSafe(ct) {
			bad(".setCustomResponse.contentType", "invalid content type %q", ct)
		}
		return fwBehavior{action: Custom, status: cr.StatusCode, contentType: ct, body: cr.ContentBody}, errs
	}
}

// SetClock replaces the clock of the rate limiters (default time.Now); call
// it before the firewall serves.
func (f *Firewall) SetClock(now func() time.Time) { f.now = now }

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

// ---------------------------------------------------------------------------
// Rate limiting

const (
	limiterShards    = 16
	maxBucketsPerShd = 4096
)

// limiter is a token bucket, global or per client: per IPv4 address or per
// IPv6 /64 (one subscriber's allocation, so that rotating addresses inside
// it does not escape the limit).
type limiter struct {
	rate   float64 // tokens per second
	burst  float64
	global bool

	mu     sync.Mutex
	bucket bucket
	shards [limiterShards]limShard
}

type limShard struct {
	mu sync.Mutex
	m  map[netip.Addr]bucket
}

type bucket struct {
	tokens float64
	last   int64 // unix nanoseconds of the last refill
}

func newLimiter(rate, burst float64, global bool) *limiter {
	l := &limiter{rate: rate, burst: burst, global: global}
	l.bucket = bucket{tokens: burst, last: math.MinInt64}
	for i := range l.shards {
		l.shards[i].m = map[netip.Addr]bucket{}
	}
	return l
}

// take refills b to now and takes a token; wait is the seconds until the
// next token when none is left.
func (l *limiter) take(b *bucket, now int64) (ok bool, wait float64) {
	if b.last == math.MinInt64 {
		b.tokens = l.burst
	} else if now > b.last {
		b.tokens = min(l.burst, b.tokens+float64(now-b.last)/1e9*l.rate)
	}
	if now > b.last {
		b.last = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, (1 - b.tokens) / l.rate
}

// full reports whether b has refilled completely by now.
func (l *limiter) full(b bucket, now int64) bool {
	return b.tokens+float64(now-b.last)/1e9*l.rate >= l.burst
}

func (l *limiter) allow(addr netip.Addr, now int64) (bool, float64) {
	if l.global {
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.take(&l.bucket, now)
	}
	key := addr.Unmap().WithZone("")
	if key.Is6() {
		p, _ := key.Prefix(64)
		key = p.Addr()
	}
	b16 := key.As16()
	h := uint32(2166136261)
	for _, c := range b16 {
		h = (h ^ uint32(c)) * 16777619
	}
	s := &l.shards[h%limiterShards]
	s.mu.Lock()
	defer s.mu.Unlock()
	b, found := s.m[key]
	if !found {
		b.last = math.MinInt64
		if len(s.m) >= maxBucketsPerShd {
			s.evict(l, now)
		}
	}
	ok, wait := l.take(&b, now)
	s.m[key] = b
	return ok, wait
}

// evict removes the buckets that have refilled (forgetting them changes
// nothing); if every bucket is still draining, it removes arbitrary ones so
// that memory stays bounded.
func (s *limShard) evict(l *limiter, now int64) {
	for k, b := range s.m {
		if l.full(b, now) {
			delete(s.m, k)
		}
	}
	for k := range s.m {
		if len(s.m) < maxBucketsPerShd*3/4 {
			break
		}
		delete(s.m, k)
	}
}

// ---------------------------------------------------------------------------
// Application

// Application is a compiled application rules engine. It is immutable and
// safe for concurrent use.
type Application struct {
	request, response []appRule
	// requestIndex and responseIndex select the rules a request visits in
	// each phase; nil visits all.
	requestIndex, responseIndex *ruleIndex
	// headerNames are the canonical names every request-phase rule (active
	// or not) adds or filters.
	headerNames []string
	// stripKeys are headerNames lowercase with '_' as '-'.
	stripKeys []string
}

type appRule struct {
	name      string
	crit      criteria
	behaviors []appBehavior
}

type behKind uint8

const (
	bAddRequestHeader behKind = iota + 1
	bFilterRequestHeader
	bRewriteRequest
	bRedirect301
	bRedirect302
	bRedirectHTTPS
	bDeny
	bNoContent
	bDeliver
	bFinishRequestPhase
	bAddResponseHeader
	bFilterResponseHeader
)

type appBehavior struct {
	kind behKind
	name string // canonical header name
	key  string // variantKey of name
	tmpl *Template
}

var behaviorNames = map[behKind]string{
	bAddRequestHeader: "addRequestHeader", bFilterRequestHeader: "filterRequestHeader",
	bRewriteRequest: "rewriteRequest", bRedirect301: "redirectTo301", bRedirect302: "redirectTo302",
	bRedirectHTTPS: "redirectHttpToHttps", bDeny: "deny", bNoContent: "noContent", bDeliver: "deliver",
	bFinishRequestPhase: "finishRequestPhase", bAddResponseHeader: "addResponseHeader",
	bFilterResponseHeader: "filterResponseHeader",
}

// terminal reports whether the behavior always ends its phase.
func (k behKind) terminal() bool {
	switch k {
	case bRedirect301, bRedirect302, bDeny, bNoContent, bDeliver, bFinishRequestPhase:
		return true
	}
	return false
}

func (k behKind) phase() string {
	switch k {
	case bAddResponseHeader, bFilterResponseHeader:
		return manifest.PhaseResponse
	case bDeliver:
		return ""
	}
	return manifest.PhaseRequest
}

// CompileApplication compiles the rules of an application; lists are the
// NetworkLists that is_in_list may name. The origin (and its hostHeader,
// see CompileTemplate) is compiled by the caller.
func CompileApplication(spec *manifest.ApplicationSpec, lists map[string]*NetworkList) (*Application, []FieldError) {
	a := &Application{}
	var errs []FieldError
	for i, rule := range spec.Rules {
		path := fmt.Sprintf("spec.rules[%d]", i)
		phase := rule.Phase
		switch phase {
		case "":
			phase = manifest.PhaseRequest
		case manifest.PhaseRequest, manifest.PhaseResponse:
		default:
			errs = append(errs, FieldError{Path: path + ".phase", Message: fmt.Sprintf("unknown phase %q; use request or response", rule.Phase)})
			continue
		}
		crit, cerrs := compileCriteria(path, rule.Criteria, lists, engine{phase: phase})
		errs = append(errs, cerrs...)
		if len(rule.Behaviors) == 0 {
			errs = append(errs, FieldError{Path: path + ".behaviors", Message: "a rule needs at least one behavior"})
		}
		ar := appRule{name: rule.Name, crit: crit}
		terminal := -1
		for j, b := range rule.Behaviors {
			bpath := fmt.Sprintf("%s.behaviors[%d]", path, j)
			ab, berrs := compileAppBehavior(bpath, b, phase)
			errs = append(errs, berrs...)
			if terminal >= 0 {
				errs = append(errs, FieldError{Path: bpath, Warning: true, Message: fmt.Sprintf("unreachable behavior: behaviors[%d] (%s) already ends the %s phase", terminal, behaviorNames[ar.behaviors[terminal].kind], phase)})
			} else if ab.kind.terminal() && len(berrs) == 0 {
				terminal = j
			}
			ar.behaviors = append(ar.behaviors, ab)
			if phase == manifest.PhaseRequest && (ab.kind == bAddRequestHeader || ab.kind == bFilterRequestHeader) && !slices.Contains(a.headerNames, ab.name) {
				a.headerNames = append(a.headerNames, ab.name)
			}
		}
		if rule.Active != nil && !*rule.Active {
			continue
		}
		if phase == manifest.PhaseRequest {
			a.request = append(a.request, ar)
		} else {
			a.response = append(a.response, ar)
		}
	}
	slices.Sort(a.headerNames)
	for _, n := range a.headerNames {
		a.stripKeys = append(a.stripKeys, variantKey(n))
	}
	if HasErrors(errs) {
		return nil, errs
	}
	a.requestIndex = indexRules(a.request)
	a.responseIndex = indexRules(a.response)
	return a, errs
}

// indexRules shares and compacts the comparisons of the rules of one phase
// (see shareConds), indexes them and assigns the memo slots of the phase.
func indexRules(rules []appRule) *ruleIndex {
	all := make([]criteria, len(rules))
	var tmpls []*Template
	for i, r := range rules {
		all[i] = r.crit
		for _, b := range r.behaviors {
			if b.tmpl != nil {
				tmpls = append(tmpls, b.tmpl)
			}
		}
	}
	shareConds(all)
	for i := range rules {
		rules[i].crit = all[i]
	}
	ix := buildIndex(all, minIndexedRules)
	assignSlots(all, tmpls, ix)
	return ix
}

// variantKey folds case and '_' so that header spelling variants compare
// equal.
func variantKey(name string) string {
	return strings.ToLower(strings.ReplaceAll(name, "_", "-"))
}

func compileAppBehavior(path string, b manifest.AppBehavior, phase string) (appBehavior, []FieldError) {
	type field struct {
		kind behKind
		set  bool
		arg  string
	}
	fields := []field{
		{bAddRequestHeader, b.AddRequestHeader != "", b.AddRequestHeader},
		{bFilterRequestHeader, b.FilterRequestHeader != "", b.FilterRequestHeader},
		{bRewriteRequest, b.RewriteRequest != "", b.RewriteRequest},
		{bRedirect301, b.RedirectTo301 != "", b.RedirectTo301},
		{bRedirect302, b.RedirectTo302 != "", b.RedirectTo302},
		{bRedirectHTTPS, b.RedirectHTTPToHTTPS, ""},
		{bDeny, b.Deny, ""},
		{bNoContent, b.NoContent, ""},
		{bDeliver, b.Deliver, ""},
		{bFinishRequestPhase, b.FinishRequestPhase, ""},
		{bAddResponseHeader, b.AddResponseHeader != "", b.AddResponseHeader},
		{bFilterResponseHeader, b.FilterResponseHeader != "", b.FilterResponseHeader},
	}
	var chosen []field
	for _, f := range fields {
		if f.set {
			chosen = append(chosen, f)
		}
	}
	if len(chosen) != 1 {
		names := make([]string, len(chosen))
		for i, f := range chosen {
			names[i] = behaviorNames[f.kind]
		}
		msg := "a behavior sets exactly one key (argument-less behaviors take true); this one sets none"
		if len(chosen) > 1 {
			msg = fmt.Sprintf("a behavior sets exactly one key; this one sets %s", strings.Join(names, ", "))
		}
		return appBehavior{}, []FieldError{{Path: path, Message: msg}}
	}
	f := chosen[0]
	key := behaviorNames[f.kind]
	kpath := path + "." + key
	var errs []FieldError
	bad := func(format string, args ...any) {
		errs = append(errs, FieldError{Path: kpath, Message: fmt.Sprintf(format, args...)})
	}
	if p := f.kind.phase(); p != "" && p != phase {
		bad("%s is a %s-phase behavior; this rule runs in the %s phase", key, p, phase)
		return appBehavior{kind: f.kind}, errs
	}
	out := appBehavior{kind: f.kind}
	switch f.kind {
	case bAddRequestHeader, bAddResponseHeader, bFilterRequestHeader, bFilterResponseHeader:
		if n := utf8.RuneCountInString(f.arg); n > MaxHeaderArgument {
			bad("the argument is %d characters long; the limit is %d", n, MaxHeaderArgument)
			return out, errs
		}
		add := f.kind == bAddRequestHeader || f.kind == bAddResponseHeader
		name, value := f.arg, ""
		if add {
			var ok bool
			name, value, ok = strings.Cut(f.arg, ":")
			if !ok {
				bad("%q is not a header \"Name: value\"", f.arg)
				return out, errs
			}
			value = strings.TrimLeft(value, " \t")
		} else if strings.Contains(name, ":") {
			bad("%s takes a header name only, not %q", key, f.arg)
			return out, errs
		}
		if !validHeaderName(name) {
			bad("invalid header name %q: use letters, digits, - and _", name)
			return out, errs
		}
		if reservedHeaders[variantKey(name)] {
			bad("header %q cannot be added or filtered: the edge manages it", name)
			return out, errs
		}
		out.name, out.key = textproto.CanonicalMIMEHeaderKey(name), variantKey(name)
		if add {
			t, terrs := CompileTemplate(kpath, value, phase)
			errs = append(errs, terrs...)
			out.tmpl = t
		}
	case bRewriteRequest:
		if !strings.HasPrefix(f.arg, "/") && !strings.HasPrefix(f.arg, "${") {
			bad("rewriteRequest must be a path starting with \"/\", not %q", f.arg)
			return out, errs
		}
		t, terrs := CompileTemplate(kpath, f.arg, phase)
		errs = append(errs, terrs...)
		out.tmpl = t
	case bRedirect301, bRedirect302:
		if !strings.HasPrefix(f.arg, "https://") && !strings.HasPrefix(f.arg, "http://") && !strings.HasPrefix(f.arg, "/") && !strings.HasPrefix(f.arg, "${") {
			bad("%s must be an http(s) URL or a path starting with \"/\", not %q", key, f.arg)
			return out, errs
		}
		t, terrs := CompileTemplate(kpath, f.arg, phase)
		errs = append(errs, terrs...)
		out.tmpl = t
	}
	return out, errs
}

func validHeaderName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return s != ""
}

// HeaderNames returns the canonical names of every header a request-phase
// rule adds or filters, inactive rules included, sorted. The serve path
// removes them, in every case and '_'/'-' spelling, from client requests
// (see StripHeaders) so that clients cannot spoof identity headers.
func (a *Application) HeaderNames() []string {
	if a == nil {
		return nil
	}
	return slices.Clone(a.headerNames)
}

// StripHeaders deletes from h every header of HeaderNames, whatever its case
// and '_'/'-' spelling. It does not allocate.
func (a *Application) StripHeaders(h http.Header) {
	if a == nil || len(a.stripKeys) == 0 {
		return
	}
	for k := range h {
		for _, s := range a.stripKeys {
			if sameVariant(k, s) {
				delete(h, k)
				break
			}
		}
	}
}

// sameVariant compares a header name with a variantKey.
func sameVariant(name, key string) bool {
	if len(name) != len(key) {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '_':
			c = '-'
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		}
		if c != key[i] {
			return false
		}
	}
	return true
}

// Header is a header to add.
type Header struct {
	Name  string
	Value string
}

// RequestActions is what the request phase decided. The caller owns it and
// reuses it across requests: EvaluateRequest resets it, keeping its storage.
type RequestActions struct {
	// Add are the headers to add to the origin request, in order, after
	// Filter has been applied.
	Add []Header
	// Filter are the canonical names of the headers to remove from the
	// origin request.
	Filter []string
	// Path replaces the path and query sent to the origin when not empty.
	Path string
	// Status is non-zero when the edge answers itself: 301 or 302 (with
	// Location), 403 (deny) or 204 (noContent).
	Status   int
	Location string
	// Rule is the name of the rule whose behavior ended the phase, if any.
	Rule string

	b builder
}

// Reset empties a, keeping its storage.
func (a *RequestActions) Reset() {
	a.Add, a.Filter = a.Add[:0], a.Filter[:0]
	a.Path, a.Location, a.Rule, a.Status = "", "", "", 0
	a.b.reset()
}

// ResponseActions is what the response phase decided; like RequestActions
// it is caller-owned and reusable.
type ResponseActions struct {
	// Add are the headers to add to the response, after Filter has been
	// applied.
	Add []Header
	// Filter are the canonical names of the origin's headers to remove.
	Filter []string
	// Rule is the name of the rule whose deliver ended the phase, if any.
	Rule string

	b builder
}

// Reset empties a, keeping its storage.
func (a *ResponseActions) Reset() {
	a.Add, a.Filter, a.Rule = a.Add[:0], a.Filter[:0], ""
	a.b.reset()
}

// builder renders templates into one buffer and turns it into a string once
// per phase, so that any number of rendered values cost one allocation.
type builder struct {
	buf  []byte
	pend []pending
}

type pending struct {
	slot       int // index into Add, or slotPath, slotLocation
	start, end int
}

const (
	slotPath     = -1
	slotLocation = -2
)

func (b *builder) reset() { b.buf, b.pend = b.buf[:0], b.pend[:0] }

// render returns the template's value when it needs no buffer, else
// records it for slot and returns "".
func (b *builder) render(t *Template, r *Request, resp *ResponseView, slot int) string {
	if s, ok := t.direct(r, resp); ok {
		return s
	}
	start := len(b.buf)
	b.buf = t.appendTo(b.buf, r, resp)
	b.pend = append(b.pend, pending{slot: slot, start: start, end: len(b.buf)})
	return ""
}

// drop forgets pending values of slot (a path rewritten twice).
func (b *builder) drop(slot int) {
	b.pend = slices.DeleteFunc(b.pend, func(p pending) bool { return p.slot == slot })
}

// finish fills the pending values and removes filtered headers (empty
// names) from add.
func (b *builder) finish(add []Header, path, location *string) []Header {
	if len(b.pend) > 0 {
		s := string(b.buf)
		for _, p := range b.pend {
			v := s[p.start:p.end]
			switch p.slot {
			case slotPath:
				*path = v
			case slotLocation:
				*location = v
			default:
				add[p.slot].Value = v
			}
		}
	}
	return slices.DeleteFunc(add, func(h Header) bool { return h.Name == "" })
}

func addHeader(add []Header, b *builder, name string, t *Template, r *Request, resp *ResponseView) []Header {
	add = append(add, Header{Name: name})
	add[len(add)-1].Value = b.render(t, r, resp, len(add)-1)
	return add
}

// filterHeader removes the headers added so far under name (in any case or
// '_'/'-' spelling; key is its variantKey) and records the filter.
func filterHeader(add []Header, filter []string, name, key string) []string {
	for i := range add {
		if sameVariant(add[i].Name, key) {
			add[i].Name = "" // removed by finish
		}
	}
	if !slices.Contains(filter, name) {
		filter = append(filter, name)
	}
	return filter
}

// httpsLocation is the location of redirectHttpToHttps.
var httpsLocation = &Template{raw: "https://${host}${request_uri}", segs: []segment{
	{lit: "https://"}, {v: variable{kind: vHost}, isVar: true}, {v: variable{kind: vRequestURI}, isVar: true},
}}

// EvaluateRequest runs the active request-phase rules in order and writes
// what they decided into out (reset first). Behaviors apply in order;
// redirects, deny, noContent, deliver and finishRequestPhase end the phase.
// Variables read the client's request as received (a rewrite does not change
// ${uri} for later rules).
func (a *Application) EvaluateRequest(r *Request, out *RequestActions) {
	out.Reset()
	if a == nil {
		return
	}
	r.resetMemo()
	var it ruleIter
	if a.requestIndex != nil {
		var buf ruleLists
		it.lists = &buf
		it.start(a.requestIndex, r, nil)
	}
rules:
	for i := it.next(-1); i < len(a.request); i = it.next(i) {
		rule := &a.request[i]
		if !rule.crit.match(r, nil) {
			continue
		}
		for j := range rule.behaviors {
			b := &rule.behaviors[j]
			switch b.kind {
			case bAddRequestHeader:
				out.Add = addHeader(out.Add, &out.b, b.name, b.tmpl, r, nil)
			case bFilterRequestHeader:
				out.Filter = filterHeader(out.Add, out.Filter, b.name, b.key)
			case bRewriteRequest:
				out.b.drop(slotPath)
				out.Path = out.b.render(b.tmpl, r, nil, slotPath)
			case bRedirect301, bRedirect302:
				out.Status = http.StatusMovedPermanently
				if b.kind == bRedirect302 {
					out.Status = http.StatusFound
				}
				out.Location = out.b.render(b.tmpl, r, nil, slotLocation)
				out.Rule = rule.name
				break rules
			case bRedirectHTTPS:
				if r.scheme() == "http" {
					out.Status = http.StatusMovedPermanently
					out.Location = out.b.render(httpsLocation, r, nil, slotLocation)
					out.Rule = rule.name
					break rules
				}
			case bDeny:
				out.Status, out.Rule = http.StatusForbidden, rule.name
				break rules
			case bNoContent:
				out.Status, out.Rule = http.StatusNoContent, rule.name
				break rules
			case bDeliver, bFinishRequestPhase:
				out.Rule = rule.name
				break rules
			}
		}
	}
	out.Add = out.b.finish(out.Add, &out.Path, &out.Location)
}

// EvaluateResponse runs the active response-phase rules in order and writes
// what they decided into out (reset first); deliver ends the phase.
func (a *Application) EvaluateResponse(r *Request, resp *ResponseView, out *ResponseActions) {
	out.Reset()
	if a == nil {
		return
	}
	if resp == nil {
		resp = &ResponseView{}
	}
	r.resetMemo()
	var it ruleIter
	if a.responseIndex != nil {
		var buf ruleLists
		it.lists = &buf
		it.start(a.responseIndex, r, resp)
	}
rules:
	for i := it.next(-1); i < len(a.response); i = it.next(i) {
		rule := &a.response[i]
		if !rule.crit.match(r, resp) {
			continue
		}
		for j := range rule.behaviors {
			b := &rule.behaviors[j]
			switch b.kind {
			case bAddResponseHeader:
				out.Add = addHeader(out.Add, &out.b, b.name, b.tmpl, r, resp)
			case bFilterResponseHeader:
				out.Filter = filterHeader(out.Add, out.Filter, b.name, b.key)
			case bDeliver:
				out.Rule = rule.name
				break rules
			}
		}
	}
	var none string
	out.Add = out.b.finish(out.Add, &none, &none)
}
