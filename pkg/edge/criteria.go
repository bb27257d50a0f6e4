package edge

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/edgectl/edgectl/pkg/manifest"
)

// FieldError is a problem found while compiling, at a field path relative to
// the resource document, such as "spec.rules[0].criteria[0][1].argument".
type FieldError struct {
	Path    string
	Message string
	// Warning marks a problem that does not prevent serving.
	Warning bool
}

// Error implements error.
func (e FieldError) Error() string { return e.Path + ": " + e.Message }

// opKind is a compiled operator.
type opKind uint8

const (
	opInvalid opKind = iota
	opEqual
	opNotEqual
	opStartsWith
	opNotStartsWith
	opMatches
	opNotMatches
	opExists
	opNotExists
	opInList
	opNotInList
)

var operators = map[string]opKind{
	"is_equal":            opEqual,
	"is_not_equal":        opNotEqual,
	"starts_with":         opStartsWith,
	"does_not_start_with": opNotStartsWith,
	"matches":             opMatches,
	"does_not_match":      opNotMatches,
	"exists":              opExists,
	"does_not_exist":      opNotExists,
	"is_in_list":          opInList,
	"is_not_in_list":      opNotInList,
}

// cond is one compiled comparison.
type cond struct {
	v    variable
	op   opKind
	arg  string
	re   *regexp.Regexp
	list *NetworkList
	// or joins the comparison to the previous one with "or" (else "and").
	or bool
	// id is the comparison's bit in the per-request result cache plus one;
	// 0 means not cached (see shareConds).
	id uint8
}

// criteria are groups ANDed together; inside a group "and" binds tighter
// than "or". No criteria always match.
type criteria [][]cond

// engine says which variables criteria may use.
type engine struct {
	firewall bool
	phase    string // application rules
	// memo assigns request memo slots to the variables that cost a lookup;
	// nil assigns none.
	memo *memoSlots
}

// memoSlots assigns the memo slots of one compiled firewall or application.
type memoSlots struct {
	m map[variable]uint8
}

// slot returns the memo slot of v (0: not memoized).
func (ms *memoSlots) slot(v variable) uint8 {
	if ms == nil {
		return 0
	}
	switch v.kind {
	case vHTTP, vCookie, vArg, vSentHTTP, vUpstreamHTTP, vRequest, vClientVRemain:
	default:
		return 0
	}
	if s, ok := ms.m[v]; ok {
		return s
	}
	if len(ms.m) >= maxMemo {
		return 0
	}
	if ms.m == nil {
		ms.m = map[variable]uint8{}
	}
	s := uint8(len(ms.m) + 1)
	ms.m[v] = s
	return s
}

// compileCriteria compiles the criteria of a rule at path ("spec.rules[0]").
func compileCriteria(path string, groups [][]manifest.Criterion, lists map[string]*NetworkList, eng engine) (criteria, []FieldError) {
	var errs []FieldError
	out := make(criteria, 0, len(groups))
	for gi, g := range groups {
		gpath := fmt.Sprintf("%s.criteria[%d]", path, gi)
		if len(g) == 0 {
			errs = append(errs, FieldError{Path: gpath, Message: "empty criteria group: a group needs at least one comparison"})
			continue
		}
		group := make([]cond, 0, len(g))
		for ci, c := range g {
			cpath := fmt.Sprintf("%s[%d]", gpath, ci)
			cc, cerrs := compileCond(cpath, ci == 0, c, lists, eng)
			errs = append(errs, cerrs...)
			group = append(group, cc)
		}
		out = append(out, group)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return out, nil
}

func compileCond(path string, first bool, c manifest.Criterion, lists map[string]*NetworkList, eng engine) (cond, []FieldError) {
	var errs []FieldError
	bad := func(field, format string, args ...any) {
		p := path
		if field != "" {
			p += "." + field
		}
		errs = append(errs, FieldError{Path: p, Message: fmt.Sprintf(format, args...)})
	}
	var out cond
	switch c.Conditional {
	case "", "if":
		if !first {
			if c.Conditional == "" {
				bad("", "missing conditional: every comparison after the first of a group needs conditional and or or")
			} else {
				bad("conditional", "conditional \"if\" is only for the first comparison of a group; use and or or")
			}
		}
	case "and", "or":
		if first {
			bad("conditional", "the first comparison of a group takes conditional if (or none), not %q", c.Conditional)
		}
		out.or = c.Conditional == "or"
	default:
		bad("conditional", "unknown conditional %q; use if, and or or", c.Conditional)
	}

	// Variable.
	var msg string
	if eng.firewall {
		out.v, msg = lookupFirewallVar(c.Variable)
	} else {
		out.v, msg = appCriteriaVar(c.Variable, eng.phase)
	}
	varOK := msg == ""
	if varOK {
		out.v.slot = eng.memo.slot(out.v)
	}
	if !varOK {
		bad("variable", "%s", msg)
	}

	// Operator and argument.
	op, ok := operators[c.Operator]
	if !ok {
		names := make([]string, 0, len(operators))
		for n := range operators {
			names = append(names, n)
		}
		m := fmt.Sprintf("unknown operator %q", c.Operator)
		if best := Closest(c.Operator, names); best != "" {
			m += fmt.Sprintf("; did you mean %q?", best)
		}
		bad("operator", "%s", m)
		return out, errs
	}
	out.op = op
	switch op {
	case opExists, opNotExists:
		if c.Argument != nil {
			bad("argument", "operator %s takes no argument", c.Operator)
		}
		return out, errs
	}
	if c.Argument == nil {
		bad("", "operator %s requires an argument", c.Operator)
		return out, errs
	}
	arg := *c.Argument
	switch op {
	case opMatches, opNotMatches:
		expr := arg
		if out.v.kind == vHost {
			expr = "(?i)" + expr // hosts are compared in lowercase
		}
		re, err := regexp.Compile(expr)
		if err != nil {
			bad("argument", "invalid regular expression %q: %v", arg, strings.TrimPrefix(err.Error(), "error parsing regexp: "))
		}
		out.re = re
	case opInList, opNotInList:
		if varOK && out.v.kind != vRemoteAddr {
			want := "${remote_addr}"
			if eng.firewall {
				want = "network"
			}
			bad("operator", "operator %s tests the client address: use it with the variable %s, not %q", c.Operator, want, c.Variable)
		}
		l, found := lists[arg]
		if !found {
			names := make([]string, 0, len(lists))
			for n := range lists {
				names = append(names, n)
			}
			slices.Sort(names)
			m := fmt.Sprintf("unknown NetworkList %q", arg)
			if best := Closest(arg, names); best != "" {
				m += fmt.Sprintf("; did you mean %q?", best)
			}
			bad("argument", "%s", m)
		}
		out.list = l
	default:
		if out.v.kind == vHost {
			arg = strings.ToLower(arg)
		}
	}
	out.arg = arg
	return out, errs
}

// appCriteriaVar resolves the variable of an application criterion, which
// must be one ${name}.
func appCriteriaVar(spelled, phase string) (variable, string) {
	inner, ok := strings.CutPrefix(spelled, "${")
	if !ok {
		if _, msg := lookupAppVar(spelled, phase); msg == "" {
			return variable{}, fmt.Sprintf("application variables are written \"${%s}\", not %q", spelled, spelled)
		}
		return variable{}, fmt.Sprintf("application criteria compare one variable written ${name}, not %q", spelled)
	}
	name, ok := strings.CutSuffix(inner, "}")
	if !ok {
		return variable{}, fmt.Sprintf("unterminated \"${\" in variable %q", spelled)
	}
	if strings.ContainsAny(name, "${}") {
		return variable{}, fmt.Sprintf("application criteria compare one variable written ${name}, not %q", spelled)
	}
	if name == "" {
		return variable{}, "empty variable \"${}\""
	}
	return lookupAppVar(name, phase)
}

// maxShared is the number of comparisons whose results are cached per
// evaluation.
const maxShared = 64

type condKey struct {
	kind varKind
	name string
	op   opKind
	arg  string
}

// shareConds gives the comparisons that appear more than once in a
// firewall or application (such as the same ${host} test in many rules) a
// result-cache id, so that each is evaluated once per request.
func shareConds(all []criteria) {
	count := map[condKey]int{}
	for _, cr := range all {
		for _, g := range cr {
			for _, c := range g {
				count[condKey{c.v.kind, c.v.name, c.op, c.arg}]++
			}
		}
	}
	defer compactConds(all)
	ids := map[condKey]uint8{}
	for _, cr := range all {
		for _, g := range cr {
			for i := range g {
				c := &g[i]
				k := condKey{c.v.kind, c.v.name, c.op, c.arg}
				if count[k] < 2 {
					continue
				}
				id, ok := ids[k]
				if !ok && len(ids) < maxShared {
					id = uint8(len(ids) + 1)
					ids[k] = id
				}
				c.id = id
			}
		}
	}
}

// compactConds moves the comparisons of all criteria into one contiguous
// array, in evaluation order, so that a request walks memory linearly.
func compactConds(all []criteria) {
	n := 0
	for _, cr := range all {
		for _, g := range cr {
			n += len(g)
		}
	}
	flat := make([]cond, 0, n)
	for _, cr := range all {
		for i, g := range cr {
			start := len(flat)
			flat = append(flat, g...)
			cr[i] = flat[start:len(flat):len(flat)]
		}
	}
}

// test evaluates c, through the per-request result cache when c is shared.
func (c *cond) test(r *Request, resp *ResponseView) bool {
	if c.id == 0 {
		return c.eval(r, resp)
	}
	bit := uint64(1) << (c.id - 1)
	if r.condKnown&bit != 0 {
		return r.condTrue&bit != 0
	}
	v := c.eval(r, resp)
	r.condKnown |= bit
	if v {
		r.condTrue |= bit
	}
	return v
}

// match reports whether the criteria hold for r (and resp in the response
// phase).
func (cr criteria) match(r *Request, resp *ResponseView) bool {
	for _, g := range cr {
		if !matchGroup(g, r, resp) {
			return false
		}
	}
	return true
}

// matchGroup evaluates a disjunction of conjunctions: "a or b and c" is
// "a or (b and c)". Evaluation short-circuits.
func matchGroup(g []cond, r *Request, resp *ResponseView) bool {
	term := true // value of the current conjunction
	for i := range g {
		c := &g[i]
		if c.or {
			if term {
				return true
			}
			term = true
		}
		if term {
			if c.id == 0 {
				term = c.eval(r, resp)
			} else {
				term = c.test(r, resp)
			}
		}
	}
	return term
}

func (c *cond) eval(r *Request, resp *ResponseView) bool {
	if c.op == opInList || c.op == opNotInList {
		var in bool
		if r.Conn != nil {
			in = c.list.Contains(r.Conn.Remote.Addr())
		}
		return in == (c.op == opInList)
	}
	var s string
	var present bool
	switch h := r.HTTP; {
	// The most common variables skip the general lookup.
	case c.v.kind == vHost:
		s = r.Host
		present = s != ""
	case c.v.kind == vURI && h != nil && h.URL != nil:
		s = h.URL.Path
		present = s != ""
	case c.v.kind == vMethod && h != nil:
		s = h.Method
		present = s != ""
	default:
		s, present = r.value(&c.v, resp)
	}
	switch c.op {
	case opEqual:
		return s == c.arg
	case opNotEqual:
		return s != c.arg
	case opStartsWith:
		return strings.HasPrefix(s, c.arg)
	case opNotStartsWith:
		return !strings.HasPrefix(s, c.arg)
	case opMatches:
		return c.re.MatchString(s)
	case opNotMatches:
		return !c.re.MatchString(s)
	case opExists:
		return present
	case opNotExists:
		return !present
	}
	return false
}

// refsClientCert reports whether the criteria compare the client
// certificate or its verification.
func (cr criteria) refsClientCert() bool {
	for _, g := range cr {
		for _, c := range g {
			if c.v.clientCert() {
				return true
			}
		}
	}
	return false
}
