package diag

// Distance is the Levenshtein distance between a and b, in bytes: the
// number of single-byte insertions, deletions and substitutions that turn
// one into the other. Suggestions use it to tell a typo (a distance of one
// or two) from a guess.
func Distance(a, b string) int { return distance(a, b) }
