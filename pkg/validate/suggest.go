package validate

import (
	"strings"

	"github.com/edgectl/edgectl/pkg/diag"
)

// suggest returns the candidate a misspelt or abbreviated name most likely
// means, or "": first an abbreviation, word by word (cert_required for
// certificate_required), then the closest spelling.
func suggest(name string, candidates []string) string {
	if best := abbreviationOf(name, candidates); best != "" {
		return best
	}
	return diag.Closest(name, candidates)
}

// abbreviationOf returns the shortest candidate (then the first in order)
// that has as many words as name, separated by '_' or '-', each word of
// name being a prefix of the candidate's word at the same place, such as
// cert_required for certificate_required. A name equal to a candidate is
// not an abbreviation of it.
func abbreviationOf(name string, candidates []string) string {
	words := splitWords(name)
	if len(words) == 0 {
		return ""
	}
	best := ""
	for _, c := range candidates {
		if c == name {
			continue
		}
		cw := splitWords(c)
		if len(cw) != len(words) {
			continue
		}
		ok := true
		for i, w := range words {
			if w == "" || !strings.HasPrefix(strings.ToLower(cw[i]), strings.ToLower(w)) {
				ok = false
				break
			}
		}
		if ok && (best == "" || len(c) < len(best)) {
			best = c
		}
	}
	return best
}

func splitWords(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == '_' || r == '-' })
}
