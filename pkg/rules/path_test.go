package rules

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestNormalizePath(t *testing.T) {
	type out struct{ Escaped, Decoded, Err string }
	for name, tc := range map[string]struct {
		in   string
		esc  EscapedSlashes
		want out
	}{
		"normal":                   {"/admin/users", UnescapeSlashes, out{"/admin/users", "/admin/users", ""}},
		"root":                     {"/", UnescapeSlashes, out{"/", "/", ""}},
		"asterisk":                 {"*", UnescapeSlashes, out{"*", "*", ""}},
		"double slash":             {"//admin", UnescapeSlashes, out{"/admin", "/admin", ""}},
		"many slashes":             {"/a///b//", UnescapeSlashes, out{"/a/b/", "/a/b/", ""}},
		"dot":                      {"/./admin", UnescapeSlashes, out{"/admin", "/admin", ""}},
		"dot dot":                  {"/x/../admin", UnescapeSlashes, out{"/admin", "/admin", ""}},
		"dot dot above root":       {"/../../admin", UnescapeSlashes, out{"/admin", "/admin", ""}},
		"trailing dot":             {"/admin/.", UnescapeSlashes, out{"/admin/", "/admin/", ""}},
		"trailing dot dot":         {"/admin/x/..", UnescapeSlashes, out{"/admin/", "/admin/", ""}},
		"only dot dot":             {"/..", UnescapeSlashes, out{"/", "/", ""}},
		"hidden file is no dot":    {"/a/.well-known/x", UnescapeSlashes, out{"/a/.well-known/x", "/a/.well-known/x", ""}},
		"encoded dot":              {"/%2e/admin", UnescapeSlashes, out{"/admin", "/admin", ""}},
		"encoded dot dot":          {"/x/%2E%2e/admin", UnescapeSlashes, out{"/admin", "/admin", ""}},
		"encoded letters":          {"/%61dmin", UnescapeSlashes, out{"/admin", "/admin", ""}},
		"reserved stays encoded":   {"/a%3fb%20c", UnescapeSlashes, out{"/a%3Fb%20c", "/a?b c", ""}},
		"slashes then dots":        {"/x//..//admin", UnescapeSlashes, out{"/admin", "/admin", ""}},
		"encoded slash unescaped":  {"/%2fadmin", UnescapeSlashes, out{"/admin", "/admin", ""}},
		"encoded slash dots":       {"/x%2F..%2Fadmin", UnescapeSlashes, out{"/admin", "/admin", ""}},
		"backslash unescaped":      {"/\\admin", UnescapeSlashes, out{"/admin", "/admin", ""}},
		"encoded backslash":        {"/x%5c..%5cadmin", UnescapeSlashes, out{"/admin", "/admin", ""}},
		"encoded slash kept":       {"/%2fadmin", KeepSlashes, out{"/%2Fadmin", "/%2Fadmin", ""}},
		"kept slash is no segment": {"/x%2F..%2Fadmin", KeepSlashes, out{"/x%2F..%2Fadmin", "/x%2F..%2Fadmin", ""}},
		"backslash kept encoded":   {"/a\\b", KeepSlashes, out{"/a%5Cb", "/a%5Cb", ""}},
		"keep still normalises":    {"//x/../%2e/admin", KeepSlashes, out{"/admin", "/admin", ""}},
		"encoded slash rejected":   {"/%2Fadmin", RejectSlashes, out{"", "", ErrEscapedSlash.Error()}},
		"backslash rejected":       {"/a\\b", RejectSlashes, out{"", "", ErrEscapedSlash.Error()}},
		"reject allows the rest":   {"//x/../admin", RejectSlashes, out{"/admin", "/admin", ""}},
	} {
		t.Run(name, func(t *testing.T) {
			e, d, err := NormalizePath(tc.in, tc.esc)
			got := out{e, d, ""}
			if err != nil {
				got.Err = err.Error()
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("NormalizePath(%q) (-want +got):\n%s", tc.in, diff)
			}
		})
	}
}

func TestNormalizePathDoesNotAllocate(t *testing.T) {
	n := testing.AllocsPerRun(100, func() { NormalizePath("/accounts/v1/items/.well-known", UnescapeSlashes) })
	if n != 0 {
		t.Errorf("%v allocations for a normal path, want 0", n)
	}
}

func FuzzNormalizePath(f *testing.F) {
	for _, s := range []string{"/a/../b", "//x/%2e%2E/y", "/%2f%5c\\", "/a/./b/.."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if p == "" || p[0] != '/' {
			return
		}
		e, d, err := NormalizePath(p, UnescapeSlashes)
		if err != nil {
			t.Fatal(err)
		}
		// Idempotent, and free of what it removes.
		e2, d2, _ := NormalizePath(e, UnescapeSlashes)
		if e2 != e || d2 != decodePath(e2, false) {
			t.Fatalf("not idempotent: %q → %q → %q", p, e, e2)
		}
		_ = d
		if !pathIsNormal(d) && !containsEscapeOrBackslash(d) {
			t.Fatalf("%q normalised to %q, which still has empty or dot segments", p, d)
		}
	})
}

func containsEscapeOrBackslash(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '%' || s[i] == '\\' {
			return true
		}
	}
	return false
}
