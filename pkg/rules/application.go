package rules

import (
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/edgectl/edgectl/pkg/manifest"
)

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
	return string(AppendVariantKey(nil, name))
}

// AppendVariantKey appends name's variant key to dst: ASCII letters in
// lower case and '_' read as '-', so that X_Forwarded_For and
// x-forwarded-for fold to the same key (as CGI-style origins read them).
// It does not allocate when dst has room.
func AppendVariantKey(dst []byte, name string) []byte {
	for i := 0; i < len(name); i++ {
		dst = append(dst, foldVariant(name[i]))
	}
	return dst
}

// foldVariant is one byte of a variant key.
func foldVariant(c byte) byte {
	switch {
	case c == '_':
		return '-'
	case 'A' <= c && c <= 'Z':
		return c + 'a' - 'A'
	}
	return c
}

func compileAppBehavior(path string, b manifest.AppBehavior, phase string) (appBehavior, []FieldError) {
	f, err := chosenBehavior(path, b)
	if err != nil {
		return appBehavior{}, []FieldError{*err}
	}
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
	var tmpl string
	switch f.kind {
	case bAddRequestHeader, bAddResponseHeader, bFilterRequestHeader, bFilterResponseHeader:
		name, value, msg := headerBehavior(f.kind, key, f.arg)
		if msg != "" {
			bad("%s", msg)
			return out, errs
		}
		out.name, out.key = canonicalHeaderKey(name), variantKey(name)
		if f.kind != bAddRequestHeader && f.kind != bAddResponseHeader {
			return out, errs
		}
		tmpl = value
	case bRewriteRequest:
		if !strings.HasPrefix(f.arg, "/") && !strings.HasPrefix(f.arg, "${") {
			bad("rewriteRequest must be a path starting with \"/\", not %q", f.arg)
			return out, errs
		}
		tmpl = f.arg
	case bRedirect301, bRedirect302:
		if !strings.HasPrefix(f.arg, "https://") && !strings.HasPrefix(f.arg, "http://") && !strings.HasPrefix(f.arg, "/") && !strings.HasPrefix(f.arg, "${") {
			bad("%s must be an http(s) URL or a path starting with \"/\", not %q", key, f.arg)
			return out, errs
		}
		tmpl = f.arg
	default:
		return out, errs
	}
	t, terrs := CompileTemplate(kpath, tmpl, phase)
	errs = append(errs, terrs...)
	out.tmpl = t
	return out, errs
}

// behaviorField is the one key a behavior sets, with its argument.
type behaviorField struct {
	kind behKind
	set  bool
	arg  string
}

// chosenBehavior returns the one key that b sets, or the problem when it
// sets none or several.
func chosenBehavior(path string, b manifest.AppBehavior) (behaviorField, *FieldError) {
	fields := []behaviorField{
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
	var chosen []behaviorField
	for _, f := range fields {
		if f.set {
			chosen = append(chosen, f)
		}
	}
	if len(chosen) == 1 {
		return chosen[0], nil
	}
	names := make([]string, len(chosen))
	for i, f := range chosen {
		names[i] = behaviorNames[f.kind]
	}
	msg := "a behavior sets exactly one key (argument-less behaviors take true); this one sets none"
	if len(chosen) > 1 {
		msg = fmt.Sprintf("a behavior sets exactly one key; this one sets %s", strings.Join(names, ", "))
	}
	return behaviorField{}, &FieldError{Path: path, Message: msg}
}

// headerBehavior parses the argument of a behavior that adds ("Name:
// value") or filters ("Name") a header. msg is the problem, if any.
func headerBehavior(kind behKind, key, arg string) (name, value, msg string) {
	if n := utf8.RuneCountInString(arg); n > MaxHeaderArgument {
		return "", "", fmt.Sprintf("the argument is %d characters long; the limit is %d", n, MaxHeaderArgument)
	}
	name = arg
	if kind == bAddRequestHeader || kind == bAddResponseHeader {
		var ok bool
		name, value, ok = strings.Cut(arg, ":")
		if !ok {
			return "", "", fmt.Sprintf("%q is not a header \"Name: value\"", arg)
		}
		value = strings.TrimLeft(value, " \t")
	} else if strings.Contains(name, ":") {
		return "", "", fmt.Sprintf("%s takes a header name only, not %q", key, arg)
	}
	if !validHeaderName(name) {
		return "", "", fmt.Sprintf("invalid header name %q: use letters, digits, - and _", name)
	}
	if reservedHeaders[variantKey(name)] {
		return "", "", fmt.Sprintf("header %q cannot be added or filtered: the edge manages it", name)
	}
	return name, value, ""
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

// StripHeaders deletes from h every header of strippedNames, whatever its case
// and '_'/'-' spelling. It does not allocate.
func (a *Application) StripHeaders(h HeaderMap) {
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
		if foldVariant(name[i]) != key[i] {
			return false
		}
	}
	return true
}

// httpsLocation is the location of redirectHttpToHttps.
var httpsLocation = &Template{raw: "https://${host}${request_uri}", segs: []segment{
	{lit: "https://"}, {v: variable{kind: vHost}, isVar: true}, {v: variable{kind: vRequestURI}, isVar: true},
}}

// matcher walks the rules of one phase that match a request, in order,
// skipping through the phase's index when it has one. It is the loop that
// EvaluateRequest and EvaluateResponse share. (The request and response
// are arguments of next, not fields: escape analysis does not tell fields
// apart, and the index's storage must stay on the caller's stack.)
type matcher struct {
	rules []appRule
	it    ruleIter
	i     int
}

// newMatcher begins an evaluation of rules on r and resp (nil in the
// request phase); buf is the index's working storage, owned by the caller
// so that it stays on the caller's stack. ix is the rules' index, nil to
// visit every rule.
func newMatcher(rules []appRule, ix *ruleIndex, buf *ruleLists, r *Request, resp *ResponseView) matcher {
	r.resetMemo()
	m := matcher{rules: rules, i: -1}
	if ix != nil {
		m.it.lists = buf
		m.it.start(ix, r, resp)
	}
	return m
}

// next returns the next rule whose criteria match r and resp, nil after
// the last.
func (m *matcher) next(r *Request, resp *ResponseView) *appRule {
	for i := m.it.next(m.i); i < len(m.rules); i = m.it.next(i) {
		m.i = i
		if rule := &m.rules[i]; rule.crit.match(r, resp) {
			return rule
		}
	}
	m.i = len(m.rules)
	return nil
}

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
	var buf ruleLists
	m := newMatcher(a.request, a.requestIndex, &buf, r, nil)
rules:
	for rule := m.next(r, nil); rule != nil; rule = m.next(r, nil) {
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
				out.Status = statusMovedPermanently
				if b.kind == bRedirect302 {
					out.Status = statusFound
				}
				out.Location = out.b.render(b.tmpl, r, nil, slotLocation)
				out.Rule = rule.name
				break rules
			case bRedirectHTTPS:
				if r.scheme() == "http" {
					out.Status = statusMovedPermanently
					out.Location = out.b.render(httpsLocation, r, nil, slotLocation)
					out.Rule = rule.name
					break rules
				}
			case bDeny:
				out.Status, out.Rule = statusForbidden, rule.name
				break rules
			case bNoContent:
				out.Status, out.Rule = statusNoContent, rule.name
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
	var buf ruleLists
	m := newMatcher(a.response, a.responseIndex, &buf, r, resp)
rules:
	for rule := m.next(r, resp); rule != nil; rule = m.next(r, resp) {
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
