package rules

// HeaderMap holds the fields of an HTTP header by canonical key
// ("X-Client-Id"), as net/http's Header does: the engine reads request and
// response headers through it without importing net/http, and an
// http.Header converts to it (and back) without a copy.
type HeaderMap map[string][]string

// The statuses the engines answer with.
const (
	statusNoContent        = 204
	statusMovedPermanently = 301
	statusFound            = 302
	statusForbidden        = 403
	statusTooManyRequests  = 429
)

// canonicalHeaderKey returns the canonical form of a header name, exactly as
// net/textproto's CanonicalMIMEHeaderKey (which net/http applies to every
// header it reads) computes it, so that the keys the engine compiles find
// the fields of a request: the first letter and every letter after a '-'
// upper case, the others lower case. A name holding a byte that is not a
// token character (RFC 9110) is returned unchanged. The engine may not import
// net/textproto, which pulls in sockets; a differential test holds the two
// together.
func canonicalHeaderKey(s string) string {
	upper, canonical := true, true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isTokenByte(c) {
			return s
		}
		if upper && 'a' <= c && c <= 'z' || !upper && 'A' <= c && c <= 'Z' {
			canonical = false
		}
		upper = c == '-'
	}
	if canonical {
		return s
	}
	b := []byte(s)
	upper = true
	for i, c := range b {
		switch {
		case upper && 'a' <= c && c <= 'z':
			c -= 'a' - 'A'
		case !upper && 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		}
		b[i] = c
		upper = c == '-'
	}
	return string(b)
}

// isTokenByte reports whether c may appear in a header name: a token
// character of RFC 9110, section 5.6.2.
func isTokenByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
		return true
	}
	return false
}
