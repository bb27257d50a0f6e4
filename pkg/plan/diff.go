package plan

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

// How lists are compared. Common leading and trailing elements are skipped;
// the elements in between are aligned on a longest common subsequence of
// equal elements, so that inserting, removing or moving an element shows as
// that one element added ("+ spec.rules[0]") or removed ("- spec.rules[2]"),
// not as an edit of every later element. Within each gap between aligned
// elements, removed and added elements are paired (see pairGap) and compared
// field by field, so that editing a rule shows only the changed leaves
// ("~ spec.rules[1].behaviors[0].addRequestHeader"). Paths of removed
// elements use their index in the deployed list; every other path uses the
// index in the desired list. Very long lists whose middles differ a lot
// (more than maxLCSCells comparisons) are compared index by index.
const maxLCSCells = 1 << 20

// walker collects the fields of one resource's diff.
type walker struct {
	fields []Field
}

func childPath(path, key string) string {
	if identRE.MatchString(key) {
		if path == "" {
			return key
		}
		return path + "." + key
	}
	return path + "[" + strconv.Quote(key) + "]"
}

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func indexPath(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

// diff compares before and after (either may be nil: absent) at path; key
// is the nearest object key, used to judge sensitivity.
func (w *walker) diff(path, key string, before, after any) {
	switch {
	case before == nil && after == nil:
		return
	case before == nil || after == nil:
		w.add(path, key, before, after)
		return
	}
	switch b := before.(type) {
	case *Object:
		if a, ok := after.(*Object); ok {
			for _, k := range mergeKeys(b.Keys, a.Keys) {
				w.diff(childPath(path, k), k, b.Values[k], a.Values[k])
			}
			return
		}
	case []any:
		if a, ok := after.([]any); ok {
			w.diffList(path, key, b, a)
			return
		}
	}
	if !equal(before, after) {
		w.add(path, key, before, after)
	}
}

// mergeKeys returns the union of two key lists, keeping the order both
// follow (the order of the spec's fields).
func mergeKeys(b, a []string) []string {
	inA := make(map[string]bool, len(a))
	for _, k := range a {
		inA[k] = true
	}
	inB := make(map[string]bool, len(b))
	for _, k := range b {
		inB[k] = true
	}
	out := make([]string, 0, len(a)+len(b))
	seen := make(map[string]bool, len(a)+len(b))
	emit := func(k string) {
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	i, j := 0, 0
	for i < len(b) || j < len(a) {
		switch {
		case i < len(b) && seen[b[i]]:
			i++
		case j < len(a) && seen[a[j]]:
			j++
		case i < len(b) && j < len(a) && b[i] == a[j]:
			emit(a[j])
			i, j = i+1, j+1
		case i < len(b) && !inA[b[i]]:
			emit(b[i])
			i++
		case j < len(a):
			emit(a[j])
			j++
		default:
			emit(b[i])
			i++
		}
	}
	return out
}

func (w *walker) diffList(path, key string, b, a []any) {
	p := 0
	for p < len(b) && p < len(a) && equal(b[p], a[p]) {
		p++
	}
	s := 0
	for s < len(b)-p && s < len(a)-p && equal(b[len(b)-1-s], a[len(a)-1-s]) {
		s++
	}
	bm, am := b[p:len(b)-s], a[p:len(a)-s]
	if len(bm) == 0 && len(am) == 0 {
		return
	}
	if len(bm)*len(am) > maxLCSCells {
		w.indexWise(path, key, p, bm, am)
		return
	}
	var dels, ins []int // pending, as indices into b and a
	flush := func() {
		paired := make(map[int]int) // del index -> ins index
		for _, pr := range pairGap(b, a, dels, ins) {
			paired[pr[0]] = pr[1]
		}
		pairedIns := make(map[int]bool, len(paired))
		for _, i := range dels {
			if j, ok := paired[i]; ok {
				pairedIns[j] = true
				w.diff(indexPath(path, j), key, b[i], a[j])
			}
		}
		for _, i := range dels {
			if _, ok := paired[i]; !ok {
				w.add(indexPath(path, i), key, b[i], nil)
			}
		}
		for _, j := range ins {
			if !pairedIns[j] {
				w.add(indexPath(path, j), key, nil, a[j])
			}
		}
		dels, ins = dels[:0], ins[:0]
	}
	for _, op := range lcsScript(bm, am) {
		switch op.kind {
		case opKeep:
			flush()
		case opDel:
			dels = append(dels, p+op.i)
		case opIns:
			ins = append(ins, p+op.j)
		}
	}
	flush()
}

func (w *walker) indexWise(path, key string, offset int, b, a []any) {
	for i := 0; i < max(len(b), len(a)); i++ {
		var bv, av any
		if i < len(b) {
			bv = b[i]
		}
		if i < len(a) {
			av = a[i]
		}
		w.diff(indexPath(path, offset+i), key, bv, av)
	}
}

// pairGap decides which removed and added elements of a gap are edits of
// one another. As many removed as added elements are paired in order (edits
// in place). Otherwise elements are paired in order by the most shared leaf
// values, and only when they share some, so that dropping a rule and
// editing the next one shows as one removal and one precise edit.
func pairGap(b, a []any, dels, ins []int) [][2]int {
	var pairs [][2]int
	if len(dels) == len(ins) || len(dels)*len(ins) > 4096 {
		for k := 0; k < min(len(dels), len(ins)); k++ {
			pairs = append(pairs, [2]int{dels[k], ins[k]})
		}
		return pairs
	}
	n, m := len(dels), len(ins)
	leafSets := func(idx []int, list []any) []map[string]bool {
		out := make([]map[string]bool, len(idx))
		for k, i := range idx {
			out[k] = map[string]bool{}
			collectLeaves("", list[i], out[k])
		}
		return out
	}
	lb, la := leafSets(dels, b), leafSets(ins, a)
	sim := make([]int, n*m)
	for x := 0; x < n; x++ {
		for y := 0; y < m; y++ {
			for leaf := range lb[x] {
				if la[y][leaf] {
					sim[x*m+y]++
				}
			}
		}
	}
	// best[x][y] is the highest total similarity of an in-order pairing of
	// dels[x:] with ins[y:].
	best := make([]int, (n+1)*(m+1))
	at := func(x, y int) int { return best[x*(m+1)+y] }
	for x := n - 1; x >= 0; x-- {
		for y := m - 1; y >= 0; y-- {
			v := max(at(x+1, y), at(x, y+1))
			if s := sim[x*m+y]; s > 0 {
				v = max(v, s+at(x+1, y+1))
			}
			best[x*(m+1)+y] = v
		}
	}
	for x, y := 0, 0; x < n && y < m; {
		switch s := sim[x*m+y]; {
		case s > 0 && at(x, y) == s+at(x+1, y+1):
			pairs = append(pairs, [2]int{dels[x], ins[y]})
			x, y = x+1, y+1
		case at(x, y) == at(x+1, y):
			x++
		default:
			y++
		}
	}
	return pairs
}

// collectLeaves adds "path=value" for every leaf of v.
func collectLeaves(path string, v any, out map[string]bool) {
	switch v := v.(type) {
	case *Object:
		for _, k := range v.Keys {
			collectLeaves(path+"."+k, v.Values[k], out)
		}
	case []any:
		for i, e := range v {
			collectLeaves(indexPath(path, i), e, out)
		}
	default:
		out[path+"="+canonical(v)] = true
	}
}

type opKind int

const (
	opKeep opKind = iota
	opDel
	opIns
)

type editOp struct {
	kind opKind
	i, j int
}

// lcsScript returns an edit script turning b into a that keeps a longest
// common subsequence of equal elements.
func lcsScript(b, a []any) []editOp {
	n, m := len(b), len(a)
	kb := make([]string, n)
	for i, v := range b {
		kb[i] = canonical(v)
	}
	ka := make([]string, m)
	for j, v := range a {
		ka[j] = canonical(v)
	}
	// l[i][j] is the LCS length of b[i:] and a[j:].
	l := make([]int32, (n+1)*(m+1))
	at := func(i, j int) int32 { return l[i*(m+1)+j] }
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			switch {
			case kb[i] == ka[j]:
				l[i*(m+1)+j] = at(i+1, j+1) + 1
			case at(i+1, j) >= at(i, j+1):
				l[i*(m+1)+j] = at(i+1, j)
			default:
				l[i*(m+1)+j] = at(i, j+1)
			}
		}
	}
	var ops []editOp
	i, j := 0, 0
	for i < n && j < m {
		switch {
		case kb[i] == ka[j]:
			ops = append(ops, editOp{opKeep, i, j})
			i, j = i+1, j+1
		case at(i+1, j) >= at(i, j+1):
			ops = append(ops, editOp{opDel, i, j})
			i++
		default:
			ops = append(ops, editOp{opIns, i, j})
			j++
		}
	}
	for ; i < n; i++ {
		ops = append(ops, editOp{opDel, i, j})
	}
	for ; j < m; j++ {
		ops = append(ops, editOp{opIns, i, j})
	}
	return ops
}

// leaves adds one field per leaf of v (a created resource).
func (w *walker) leaves(path, key string, v any) {
	switch v := v.(type) {
	case *Object:
		if len(v.Keys) == 0 {
			w.add(path, key, nil, v)
		}
		for _, k := range v.Keys {
			w.leaves(childPath(path, k), k, v.Values[k])
		}
	case []any:
		if len(v) == 0 {
			w.add(path, key, nil, v)
		}
		for i, e := range v {
			w.leaves(indexPath(path, i), key, e)
		}
	default:
		w.add(path, key, nil, v)
	}
}

func (w *walker) add(path, key string, before, after any) {
	w.fields = append(w.fields, Field{
		Path:      path,
		Before:    present(before),
		After:     present(after),
		Sensitive: sensitive(path, key, before) || sensitive(path, key, after),
	})
}

// present returns v with PEM blobs replaced by their summary.
func present(v any) any {
	switch v := v.(type) {
	case string:
		if s, ok := SummarizePEM(v); ok {
			return s
		}
	case *Object:
		o := &Object{Keys: v.Keys, Values: make(map[string]any, len(v.Values))}
		for k, e := range v.Values {
			o.Values[k] = present(e)
		}
		return o
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = present(e)
		}
		return out
	}
	return v
}

// SummarizePEM returns a short description of a PEM text, such as
// "(PEM, 2 certificates, sha256:0123456789ab…)", where the digest covers
// the decoded blocks. Certificates, CA bundles and CRLs are public but
// long; a plan shows that they changed, not their bytes. ok is false when s
// is not PEM.
func SummarizePEM(s string) (summary string, ok bool) {
	if !strings.HasPrefix(strings.TrimSpace(s), "-----BEGIN ") {
		return "", false
	}
	counts := map[string]int{}
	var order []string
	h := sha256.New()
	rest := []byte(s)
	for {
		block, r := pem.Decode(rest)
		if block == nil {
			break
		}
		rest = r
		name := strings.ToLower(block.Type)
		switch block.Type {
		case "CERTIFICATE":
			name = "certificate"
		case "X509 CRL":
			name = "CRL"
		}
		if counts[name] == 0 {
			order = append(order, name)
		}
		counts[name]++
		h.Write(block.Bytes)
	}
	if len(order) == 0 {
		return "", false
	}
	parts := []string{"PEM"}
	for _, name := range order {
		n := counts[name]
		if n != 1 && !strings.HasSuffix(name, "s") {
			parts = append(parts, fmt.Sprintf("%d %ss", n, name))
		} else {
			parts = append(parts, fmt.Sprintf("%d %s", n, name))
		}
	}
	parts = append(parts, "sha256:"+hex.EncodeToString(h.Sum(nil))[:12]+"…")
	return "(" + strings.Join(parts, ", ") + ")", true
}

var pemSummaryRE = regexp.MustCompile(`^\(PEM, [^()]*sha256:[0-9a-f]{12}…\)$`)

// sensitive reports whether v at path holds, or contains, a value that may
// be a secret: anything under a field named like key material, passwords
// or tokens (references such as privateKeyFile, privateKeyEnv and
// publicKeyFingerprint are not secrets), an origin URL with user
// information, and any PEM private key.
func sensitive(path, key string, v any) bool {
	if v == nil {
		return false
	}
	if !strings.HasPrefix(path, "metadata.") && secretName(key) {
		return true
	}
	switch v := v.(type) {
	case *Object:
		for _, k := range v.Keys {
			if sensitive(childPath(path, k), k, v.Values[k]) {
				return true
			}
		}
		return false
	case []any:
		for i, e := range v {
			if sensitive(indexPath(path, i), key, e) {
				return true
			}
		}
		return false
	case string:
		if strings.Contains(v, "PRIVATE KEY") {
			return true
		}
		if path == "spec.origin.url" {
			if u, err := url.Parse(v); err == nil && u.User != nil {
				return true
			}
		}
	}
	return false
}

func secretName(key string) bool {
	k := strings.ToLower(key)
	for _, ref := range []string{"file", "files", "env", "fingerprint"} {
		if strings.HasSuffix(k, ref) {
			return false
		}
	}
	for _, word := range []string{"password", "secret", "token", "privatekey", "credential"} {
		if strings.Contains(k, word) {
			return true
		}
	}
	return strings.HasSuffix(k, "key")
}
