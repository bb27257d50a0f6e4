package rules

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/edgectl/edgectl/pkg/diag"
	"github.com/edgectl/edgectl/pkg/manifest"
)

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

// cond is one compiled comparison. The fields that every evaluation reads
// come first and fit in 40 bytes, so that a rule set walks little memory;
// the variable, regular expression and network list are behind x.
type cond struct {
	arg string
	x   *condInfo
	op  opKind
	// kind is x.v.kind.
	kind varKind
	// id is the comparison's bit in the per-request result cache plus one;
	// 0 means not cached (see shareConds).
	id uint8
	// slot is x.v.slot, the variable's entry in Request.memo plus one (see
	// assignSlots).
	slot uint8
	// or joins the comparison to the previous one with "or" (else "and"):
	// it starts a conjunction.
	or bool
	// group marks the first comparison of a group.
	group bool
	// onTrue and onFalse are the comparison that follows in the criteria
	// when this one holds or does not, or jMatch or jFail.
	onTrue, onFalse int32
}

// condInfo holds what a comparison reads less often than its argument.
type condInfo struct {
	v    variable
	re   *regexp.Regexp
	list *NetworkList
}

// Branch targets that end an evaluation.
const (
	jMatch int32 = -1
	jFail  int32 = -2
)

// criteria are the comparisons of a rule, flattened: groups ANDed together
// and, inside a group, "and" binding tighter than "or". The onTrue and
// onFalse links of each comparison encode that structure, so that matching
// walks each comparison at most once without re-reading it. No criteria
// always match.
type criteria []cond

// engine says which variables criteria may use.
type engine struct {
	firewall bool
	phase    string // application rules
}

// compileCriteria compiles the criteria of a rule at path ("spec.rules[0]").
func compileCriteria(path string, groups [][]manifest.Criterion, lists map[string]*NetworkList, eng engine) (criteria, []FieldError) {
	var errs []FieldError
	n := 0
	for _, g := range groups {
		n += len(g)
	}
	out := make(criteria, 0, n)
	for gi, g := range groups {
		gpath := fmt.Sprintf("%s.criteria[%d]", path, gi)
		if len(g) == 0 {
			errs = append(errs, FieldError{Path: gpath, Message: "empty criteria group: a group needs at least one comparison"})
			continue
		}
		start := len(out)
		for ci, c := range g {
			cpath := fmt.Sprintf("%s[%d]", gpath, ci)
			cc, cerrs := compileCond(cpath, ci == 0, c, lists, eng)
			errs = append(errs, cerrs...)
			out = append(out, cc)
		}
		orderGroup(out[start:])
	}
	if len(errs) > 0 {
		return nil, errs
	}
	out.link()
	return out, nil
}

// condCost ranks comparisons by the work they take: literal comparisons,
// then network lists and the variables that are built per request, then
// regular expressions.
func condCost(c *cond) int {
	switch c.op {
	case opMatches, opNotMatches:
		return 2
	case opInList, opNotInList:
		return 1
	}
	switch c.x.v.kind {
	case vRequest, vClientVRemain:
		return 1
	}
	return 0
}

// orderGroup moves the cheap comparisons of each conjunction of a group
// ahead of the costly ones, keeping their order otherwise, and marks the
// group's and conjunctions' first comparisons. A conjunction's value does
// not depend on the order of its comparisons, which have no side effects,
// so evaluation may stop at a cheap false one.
func orderGroup(g []cond) {
	for start := 0; start < len(g); {
		end := start + 1
		for end < len(g) && !g[end].or {
			end++
		}
		conj := g[start:end]
		slices.SortStableFunc(conj, func(a, b cond) int { return condCost(&a) - condCost(&b) })
		for i := range conj {
			conj[i].or = i == 0 && start > 0
		}
		start = end
	}
	if len(g) > 0 {
		g[0].group = true
	}
}

// link sets the branch targets of the comparisons from their group and or
// marks. A comparison that holds leads to the next one of its conjunction,
// or when it is the last, to the next group (or a match after the last
// group). One that does not hold leads to the next conjunction of its
// group, or to a failure when there is none.
func (cr criteria) link() {
	nextGroup, nextConj := jMatch, jFail
	for i := len(cr) - 1; i >= 0; i-- {
		c := &cr[i]
		if i+1 == len(cr) || cr[i+1].group || cr[i+1].or {
			c.onTrue = nextGroup
		} else {
			c.onTrue = int32(i + 1)
		}
		c.onFalse = nextConj
		if c.or {
			nextConj = int32(i)
		}
		if c.group {
			nextGroup, nextConj = int32(i), jFail
		}
	}
}

// compileCond compiles one comparison of a criteria group; first is set for
// the first comparison of its group.
func compileCond(path string, first bool, c manifest.Criterion, lists map[string]*NetworkList, eng engine) (cond, []FieldError) {
	cc := condCompiler{path: path, c: c, eng: eng}
	out := cond{x: &condInfo{}}
	out.or = cc.conditional(first)
	varOK := cc.variable(&out)
	op, ok := cc.operator()
	if !ok {
		return out, cc.errs
	}
	out.op = op
	switch op {
	case opExists, opNotExists:
		if c.Argument != nil {
			cc.bad("argument", "operator %s takes no argument", c.Operator)
		}
		return out, cc.errs
	}
	if c.Argument == nil {
		cc.bad("", "operator %s requires an argument", c.Operator)
		return out, cc.errs
	}
	out.arg = cc.argument(&out, *c.Argument, varOK, lists)
	return out, cc.errs
}

// condCompiler collects the problems of one comparison, positioned under
// its path.
type condCompiler struct {
	path string
	c    manifest.Criterion
	eng  engine
	errs []FieldError
}

func (cc *condCompiler) bad(field, format string, args ...any) {
	p := cc.path
	if field != "" {
		p += "." + field
	}
	cc.errs = append(cc.errs, FieldError{Path: p, Message: fmt.Sprintf(format, args...)})
}

// conditional checks the comparison's conditional and reports whether it
// is "or".
func (cc *condCompiler) conditional(first bool) (or bool) {
	switch cc.c.Conditional {
	case "", "if":
		if !first {
			if cc.c.Conditional == "" {
				cc.bad("", "missing conditional: every comparison after the first of a group needs conditional and or or")
			} else {
				cc.bad("conditional", "conditional \"if\" is only for the first comparison of a group; use and or or")
			}
		}
	case "and", "or":
		if first {
			cc.bad("conditional", "the first comparison of a group takes conditional if (or none), not %q", cc.c.Conditional)
		}
		return cc.c.Conditional == "or"
	default:
		cc.bad("conditional", "unknown conditional %q; use if, and or or", cc.c.Conditional)
	}
	return false
}

// variable resolves the comparison's variable into out and reports whether
// it is known.
func (cc *condCompiler) variable(out *cond) bool {
	var msg string
	v := &out.x.v
	if cc.eng.firewall {
		*v, msg = lookupFirewallVar(cc.c.Variable)
	} else {
		*v, msg = appCriteriaVar(cc.c.Variable, cc.eng.phase)
	}
	out.kind = v.kind
	if msg != "" {
		cc.bad("variable", "%s", msg)
		return false
	}
	return true
}

// operator resolves the comparison's operator.
func (cc *condCompiler) operator() (opKind, bool) {
	op, ok := operators[cc.c.Operator]
	if ok {
		return op, true
	}
	names := make([]string, 0, len(operators))
	for n := range operators {
		names = append(names, n)
	}
	m := fmt.Sprintf("unknown operator %q", cc.c.Operator)
	if best := diag.Closest(cc.c.Operator, names); best != "" {
		m += fmt.Sprintf("; did you mean %q?", best)
	}
	cc.bad("operator", "%s", m)
	return 0, false
}

// argument compiles the argument of an operator that takes one: a regular
// expression, a network list, or a value to compare (lowercase for host).
// It returns the argument to compare with.
func (cc *condCompiler) argument(out *cond, arg string, varOK bool, lists map[string]*NetworkList) string {
	v := &out.x.v
	switch out.op {
	case opMatches, opNotMatches:
		expr := arg
		if v.kind == vHost {
			expr = "(?i)" + expr // hosts are compared in lowercase
		}
		re, err := regexp.Compile(expr)
		if err != nil {
			cc.bad("argument", "invalid regular expression %q: %v", arg, strings.TrimPrefix(err.Error(), "error parsing regexp: "))
		}
		out.x.re = re
	case opInList, opNotInList:
		if varOK && v.kind != vRemoteAddr {
			want := "${remote_addr}"
			if cc.eng.firewall {
				want = "network"
			}
			cc.bad("operator", "operator %s tests the client address: use it with the variable %s, not %q", cc.c.Operator, want, cc.c.Variable)
		}
		out.x.list = cc.list(arg, lists)
	default:
		if v.kind == vHost {
			arg = strings.ToLower(arg)
		}
	}
	return arg
}

// list returns the network list name, nil (with a problem) when unknown.
func (cc *condCompiler) list(name string, lists map[string]*NetworkList) *NetworkList {
	l, found := lists[name]
	if !found {
		names := make([]string, 0, len(lists))
		for n := range lists {
			names = append(names, n)
		}
		slices.Sort(names)
		m := fmt.Sprintf("unknown NetworkList %q", name)
		if best := diag.Closest(name, names); best != "" {
			m += fmt.Sprintf("; did you mean %q?", best)
		}
		cc.bad("argument", "%s", m)
	}
	return l
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

func (c *cond) key() condKey { return condKey{c.x.v.kind, c.x.v.name, c.op, c.arg} }

// shareConds gives the comparisons that appear more than once in a
// firewall or application (such as the same ${host} test in many rules) a
// result-cache id, so that each is evaluated once per request, then
// compacts them (see compactConds): the caller stores all[i] back into its
// rules.
func shareConds(all []criteria) {
	count := map[condKey]int{}
	for _, cr := range all {
		for i := range cr {
			count[cr[i].key()]++
		}
	}
	defer compactConds(all)
	ids := map[condKey]uint8{}
	for _, cr := range all {
		for i := range cr {
			c := &cr[i]
			k := c.key()
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

// compactConds moves the comparisons of all criteria into one contiguous
// array, in evaluation order, so that a request walks memory linearly; the
// caller reads the moved criteria back from all.
func compactConds(all []criteria) {
	n := 0
	for _, cr := range all {
		n += len(cr)
	}
	flat := make([]cond, 0, n)
	for i, cr := range all {
		start := len(flat)
		flat = append(flat, cr...)
		all[i] = flat[start:len(flat):len(flat)]
	}
}

// test evaluates c, whose result is not in the per-request result cache
// yet, and caches it (c.id != 0).
func (c *cond) test(r *Request, resp *ResponseView) bool {
	bit := uint64(1) << ((c.id - 1) & 63)
	v := c.eval(r, resp)
	r.condKnown |= bit
	if v {
		r.condTrue |= bit
	}
	return v
}

// match reports whether the criteria hold for r (and resp in the response
// phase). It follows the branch links from the first comparison, so that
// evaluation short-circuits: "a or b and c" is "a or (b and c)" and groups
// are ANDed. Shared comparisons come from the result cache, and the literal
// comparisons of memoized values, the common case, are made inline.
func (cr criteria) match(r *Request, resp *ResponseView) bool {
	return len(cr) == 0 || cr.walk(r, resp)
}

// walk evaluates criteria that are not empty (see match).
func (cr criteria) walk(r *Request, resp *ResponseView) bool {
	i := int32(0)
	for {
		c := &cr[i]
		var ok bool
		m := (c.slot - 1) & (maxMemo - 1)
		switch {
		case c.id != 0:
			if bit := uint64(1) << ((c.id - 1) & 63); r.condKnown&bit != 0 {
				ok = r.condTrue&bit != 0
			} else {
				ok = c.test(r, resp)
			}
		case c.slot != 0 && r.memoSet&(1<<m) != 0 && c.op >= opEqual && c.op <= opStartsWith:
			s := r.memo[m].s
			switch c.op {
			case opEqual:
				ok = s == c.arg
			case opNotEqual:
				ok = s != c.arg
			default:
				ok = strings.HasPrefix(s, c.arg)
			}
		default:
			ok = c.eval(r, resp)
		}
		next := c.onFalse
		if ok {
			next = c.onTrue
		}
		if next < 0 {
			return next == jMatch
		}
		i = next
	}
}

func (c *cond) eval(r *Request, resp *ResponseView) bool {
	var s string
	var present bool
	switch {
	case c.op == opInList:
		return c.inList(r)
	case c.op == opNotInList:
		return !c.inList(r)
	case c.kind == vHost:
		s = r.Host
		present = s != ""
	case c.slot != 0 && r.memoSet&(1<<((c.slot-1)&(maxMemo-1))) != 0:
		m := &r.memo[(c.slot-1)&(maxMemo-1)]
		s, present = m.s, m.ok
	default:
		s, present = r.value(&c.x.v, resp)
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
		return c.x.re.MatchString(s)
	case opNotMatches:
		return !c.x.re.MatchString(s)
	case opExists:
		return present
	case opNotExists:
		return !present
	}
	return false
}

// inList reports whether the client address is in the comparison's list.
func (c *cond) inList(r *Request) bool {
	return r.Conn != nil && c.x.list.Contains(r.Conn.Remote.Addr())
}

// refsClientCert reports whether the criteria compare the client
// certificate or its verification.
func (cr criteria) refsClientCert() bool {
	for i := range cr {
		if cr[i].x.v.clientCert() {
			return true
		}
	}
	return false
}
