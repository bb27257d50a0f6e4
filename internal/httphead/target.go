package httphead

import (
	"net/url"
	"strings"
)

// OriginForm parses the common origin-form request target "/path?query"
// into u exactly as url.ParseRequestURI would, without allocating, and
// reports whether it could: a path with a byte that url escapes (or "%")
// and a query with a control byte are left to url.ParseRequestURI.
// pkg/server/h1 parses request lines' targets with it, pkg/server/h2 the
// :path pseudo-headers.
func OriginForm(target string, u *url.URL) bool {
	if target == "" || target[0] != '/' {
		return false
	}
	path, query, force := target, "", false
	if q := strings.IndexByte(target, '?'); q >= 0 {
		path, query = target[:q], target[q+1:]
		force = query == ""
	}
	for i := 0; i < len(path); i++ {
		if !plainPathByte[path[i]] {
			return false
		}
	}
	for i := 0; i < len(query); i++ {
		if c := query[i]; c < 0x20 || c == 0x7f {
			return false
		}
	}
	*u = url.URL{Path: path, RawQuery: query, ForceQuery: force}
	return true
}

// plainPathByte holds the bytes a path keeps as they are in url's
// escaping of paths (URL.EscapedPath), "%" excepted: a path of these
// bytes alone is its own Path, with no RawPath.
var plainPathByte = func() (t [256]bool) {
	for c := 0x20; c < 0x7f; c++ {
		p := "/" + string(rune(c))
		t[c] = c != '%' && (&url.URL{Path: p}).EscapedPath() == p
	}
	return t
}()
