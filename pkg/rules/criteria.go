package rules

import (
	"fmt"
	"math"
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

func compileCond(path string, first bool, c manifest.Criterion, lists map[string]*NetworkList, eng engine) (cond, []FieldError) {
	var errs []FieldError
	bad := func(field, format string, args ...any) {
		p := path
		if field != "" {
			p += "." + field
		}
		errs = append(errs, FieldError{Path: p, Message: fmt.Sprintf(format, args...)})
	}
	out := cond{x: &condInfo{}}
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
	v := &out.x.v
	if eng.firewall {
		*v, msg = lookupFirewallVar(c.Variable)
	} else {
		*v, msg = appCriteriaVar(c.Variable, eng.phase)
	}
	varOK := msg == ""
	out.kind = v.kind
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
		if best := diag.Closest(c.Operator, names); best != "" {
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
		if v.kind == vHost {
			expr = "(?i)" + expr // hosts are compared in lowercase
		}
		re, err := regexp.Compile(expr)
		if err != nil {
			bad("argument", "invalid regular expression %q: %v", arg, strings.TrimPrefix(err.Error(), "error parsing regexp: "))
		}
		out.x.re = re
	case opInList, opNotInList:
		if varOK && v.kind != vRemoteAddr {
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
			if best := diag.Closest(arg, names); best != "" {
				m += fmt.Sprintf("; did you mean %q?", best)
			}
			bad("argument", "%s", m)
		}
		out.x.list = l
	default:
		if v.kind == vHost {
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

// ---------------------------------------------------------------------------
// Rule index

// Limits of the rule index.
const (
	// minIndexedRules is the number of rules with a guard below which
	// evaluating every rule costs less than consulting an index.
	minIndexedRules = 8
	// maxPrefixLengths is the number of starts_with argument lengths per
	// variable that the index looks up: a request costs one map lookup per
	// length.
	maxPrefixLengths = 16
	// maxRuleLists bounds the rule lists that one request gathers from an
	// index; beyond it the evaluation visits every rule.
	maxRuleLists = 32
)

// atom is a comparison that an index evaluates for every rule at once: a
// variable equal to a literal, or starting with one.
type atom struct {
	kind   varKind
	name   string
	prefix bool
	arg    string
}

// varKey identifies a variable without its memo slot.
type varKey struct {
	kind varKind
	name string
}

// atomOf returns the atom that c compares, if c is one.
func atomOf(c *cond) (atom, bool) {
	switch c.op {
	case opEqual, opStartsWith:
	default:
		return atom{}, false
	}
	switch c.x.v.kind {
	case vInvalid, vRequest, vClientVRemain:
		// Built per request: the index would pay for it on every request.
		return atom{}, false
	}
	return atom{kind: c.x.v.kind, name: c.x.v.name, prefix: c.op == opStartsWith, arg: c.arg}, true
}

// ruleIndex lets an evaluation skip the rules whose criteria cannot hold.
//
// Each indexed rule has a guard: comparisons "variable is_equal literal" or
// "variable starts_with literal" of which at least one holds whenever the
// rule's criteria hold. The guard takes one comparison from each
// conjunction of one of the rule's groups: the group must hold, so one of
// its conjunctions holds, and with it every comparison of that conjunction.
// A request visits the rules one of whose guard comparisons holds, found by
// looking the variable's value, and its prefixes of the indexed lengths, up
// in a map, and the rules without a guard. Visits keep rule order, and
// criteria have no side effects, so skipping a rule that cannot match
// changes nothing but time.
type ruleIndex struct {
	// always are the rules without a guard, ascending.
	always []int32
	vars   []varIndex
}

// varIndex is the part of a rule index on one variable.
type varIndex struct {
	v variable
	// keys maps literals to the rules whose guard compares v with them.
	keys map[string]*indexEntry
	// eq is set when some guard compares v with is_equal.
	eq bool
	// lens are the lengths of the starts_with literals, ascending.
	lens []int
}

// indexEntry lists, ascending, the rules whose guard holds when the
// variable equals the entry's literal (eq) or starts with it (prefix).
type indexEntry struct {
	eq, prefix []int32
}

// buildIndex indexes the criteria of a firewall's or phase's rules, in
// order. It returns nil, meaning that every rule is visited, when fewer
// than minRules rules have a selective guard.
func buildIndex(all []criteria, minRules int) *ruleIndex {
	if len(all) < minRules || len(all) == 0 {
		// Too few rules to index, whatever their guards: skip the maps
		// (a fleet of small applications compiles faster).
		return nil
	}
	// count is the number of rules that compare each atom; a guard of
	// atoms that many rules share selects little.
	count := map[atom]int{}
	last := map[atom]int{}
	lenRules := map[varKey]map[int]int{}
	vars := map[varKey]variable{}
	for ri, cr := range all {
		for i := range cr {
			a, ok := atomOf(&cr[i])
			if !ok || last[a] == ri+1 {
				continue
			}
			last[a] = ri + 1
			count[a]++
			vk := varKey{a.kind, a.name}
			if _, ok := vars[vk]; !ok {
				vars[vk] = cr[i].x.v
			}
			if a.prefix {
				if lenRules[vk] == nil {
					lenRules[vk] = map[int]int{}
				}
				lenRules[vk][len(a.arg)]++
			}
		}
	}
	lens := prefixLengths(lenRules)
	usable := func(a atom) bool {
		return !a.prefix || slices.Contains(lens[varKey{a.kind, a.name}], len(a.arg))
	}

	guards := make([][]atom, len(all))
	indexed := 0
	for ri, cr := range all {
		g := chooseGuard(cr, usable, count)
		if g == nil || slices.ContainsFunc(g, func(a atom) bool { return count[a]*2 > len(all) }) {
			// A comparison that most rules share rarely excludes one.
			continue
		}
		guards[ri] = g
		indexed++
	}
	if indexed < minRules || indexed == 0 {
		return nil
	}

	ix := &ruleIndex{}
	pos := map[varKey]int{}
	for ri, g := range guards {
		if g == nil {
			ix.always = append(ix.always, int32(ri))
			continue
		}
		for _, a := range g {
			vk := varKey{a.kind, a.name}
			p, ok := pos[vk]
			if !ok {
				p = len(ix.vars)
				pos[vk] = p
				ix.vars = append(ix.vars, varIndex{v: vars[vk], keys: map[string]*indexEntry{}})
			}
			x := &ix.vars[p]
			e := x.keys[a.arg]
			if e == nil {
				e = &indexEntry{}
				x.keys[a.arg] = e
			}
			list := &e.eq
			if a.prefix {
				list = &e.prefix
				if !slices.Contains(x.lens, len(a.arg)) {
					x.lens = append(x.lens, len(a.arg))
				}
			} else {
				x.eq = true
			}
			if n := len(*list); n == 0 || (*list)[n-1] != int32(ri) {
				*list = append(*list, int32(ri))
			}
		}
	}
	for i := range ix.vars {
		slices.Sort(ix.vars[i].lens)
	}
	return ix
}

// prefixLengths chooses, per variable, the starts_with argument lengths
// that the index looks up: the maxPrefixLengths lengths that the most
// rules use.
func prefixLengths(lenRules map[varKey]map[int]int) map[varKey][]int {
	out := map[varKey][]int{}
	for vk, byLen := range lenRules {
		ls := make([]int, 0, len(byLen))
		for l := range byLen {
			ls = append(ls, l)
		}
		slices.SortFunc(ls, func(a, b int) int {
			if byLen[a] != byLen[b] {
				return byLen[b] - byLen[a]
			}
			return a - b
		})
		out[vk] = ls[:min(len(ls), maxPrefixLengths)]
	}
	return out
}

// chooseGuard returns the guard of cr with the lowest cost (the number of
// rules that share its atoms, summed), or nil when no group of cr has one,
// as criteria without groups, or whose every group has a conjunction of
// comparisons the index cannot evaluate.
func chooseGuard(cr criteria, usable func(atom) bool, count map[atom]int) []atom {
	var best []atom
	bestCost := 0
	for gs := 0; gs < len(cr); {
		ge := gs + 1
		for ge < len(cr) && !cr[ge].group {
			ge++
		}
		var g []atom
		cost := 0
		for cs := gs; cs < ge; {
			ce := cs + 1
			for ce < ge && !cr[ce].or {
				ce++
			}
			pick, found := atom{}, false
			for i := cs; i < ce; i++ {
				a, ok := atomOf(&cr[i])
				if ok && usable(a) && (!found || count[a] < count[pick]) {
					pick, found = a, true
				}
			}
			if !found {
				g = nil
				break
			}
			g = append(g, pick)
			cost += count[pick]
			cs = ce
		}
		if g != nil && (best == nil || cost < bestCost) {
			best, bestCost = g, cost
		}
		gs = ge
	}
	return best
}

// ruleIter yields, in order, the rules that one evaluation visits; its
// zero value visits every rule. An evaluation with an index declares a
// ruleLists, points lists at it and calls start: the storage is cleared
// only then, and the iterator's methods write through lists without
// storing its address, so that it stays on the evaluation's stack.
type ruleIter struct {
	// lists[:k] are the ascending rule lists to merge; nil visits every
	// rule.
	lists *ruleLists
	k     int
}

// ruleLists is the storage of a ruleIter's lists.
type ruleLists [maxRuleLists][]int32

// noRule is what ruleIter.next returns after the last rule to visit.
const noRule = math.MaxInt32

// start prepares the visits of the rules for r (and resp in the response
// phase) under ix.
func (it *ruleIter) start(ix *ruleIndex, r *Request, resp *ResponseView) {
	it.k = 0
	full := !it.add(ix.always)
	for i := range ix.vars {
		x := &ix.vars[i]
		s, _ := r.value(&x.v, resp)
		var whole *indexEntry
		if x.eq {
			if whole = x.keys[s]; whole != nil {
				full = full || !it.add(whole.eq)
			}
		}
		for _, l := range x.lens {
			if l > len(s) {
				break
			}
			e := whole
			if l < len(s) || !x.eq {
				e = x.keys[s[:l]]
			}
			if e != nil {
				full = full || !it.add(e.prefix)
			}
		}
	}
	if full {
		it.lists = nil // more lists than storage: visit every rule
	}
}

// add adds a list to merge, reporting false when the storage is full.
func (it *ruleIter) add(l []int32) bool {
	switch {
	case len(l) == 0:
	case it.k == len(it.lists):
		return false
	default:
		it.lists[it.k] = l
		it.k++
	}
	return true
}

// next returns the rule to visit after rule i (-1 for the first one), or
// noRule after the last.
func (it *ruleIter) next(i int) int {
	if it.lists == nil {
		return i + 1
	}
	return it.merge()
}

// merge returns the lowest rule of the lists, removing it from each, or
// noRule when they are empty.
func (it *ruleIter) merge() int {
	lists := it.lists[:it.k]
	low := int32(noRule)
	for _, l := range lists {
		if len(l) > 0 && l[0] < low {
			low = l[0]
		}
	}
	for j, l := range lists {
		if len(l) > 0 && l[0] == low {
			lists[j] = l[1:]
		}
	}
	return int(low)
}
