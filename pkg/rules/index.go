package rules

import (
	"math"
	"slices"
)

// The rule index: for a firewall or application phase with many rules, the
// comparisons of literal equality and prefix that guard them are looked up
// for all rules at once, and only the rules they do not rule out are
// evaluated.

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
