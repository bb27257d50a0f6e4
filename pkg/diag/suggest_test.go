package diag

import "testing"

func TestClosest(t *testing.T) {
	t.Parallel()
	names := []string{"is_equal", "is_not_equal", "starts_with", "matches"}
	tests := map[string]string{
		"is_eqaul":    "is_equal",
		"start_with":  "starts_with",
		"match":       "matches",
		"is_not_eqal": "is_not_equal",
		"zzzzzz":      "",
		"":            "",
	}
	for name, want := range tests {
		if got := Closest(name, names); got != want {
			t.Errorf("Closest(%q) = %q, want %q", name, got, want)
		}
	}
	// Ties go to the smallest name.
	if got := Closest("ab", []string{"ac", "aa"}); got != "aa" {
		t.Errorf("tie: got %q, want aa", got)
	}
}

func TestDistance(t *testing.T) {
	t.Parallel()
	tests := []struct {
		a, b string
		want int
	}{{"", "", 0}, {"a", "", 1}, {"", "abc", 3}, {"kitten", "sitting", 3}, {"flaw", "lawn", 2}}
	for _, tt := range tests {
		if got := distance(tt.a, tt.b); got != tt.want {
			t.Errorf("distance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}
