package rules

import (
	"errors"
	"strings"
)

// EscapedSlashes is what NormalizePath does with an encoded slash or
// backslash (%2F, %5C) and with a literal backslash in a path, after
// Envoy's path_with_escaped_slashes_action.
type EscapedSlashes uint8

const (
	// UnescapeSlashes turns %2F, %5C and '\' into '/' before the path is
	// normalised: rules and the origin see the path that an origin which
	// decodes them (or treats '\' as '/', as many do) would serve.
	UnescapeSlashes EscapedSlashes = iota
	// KeepSlashes leaves %2F and %5C encoded (uppercase) and encodes '\'
	// as %5C, so that they never separate segments; rules see them
	// encoded.
	KeepSlashes
	// RejectSlashes refuses a path holding any of them
	// (ErrEscapedSlash).
	RejectSlashes
)

// ErrEscapedSlash is the failure of a path that holds %2F, %5C or '\'
// under RejectSlashes.
var ErrEscapedSlash = errors.New("the path holds an encoded slash or a backslash")

// NormalizePath normalises the escaped path of a request target (no query)
// the way nginx does before matching its locations, and returns it in two
// forms: escaped, what the origin is sent, and decoded, what the rules
// see (uri, request_uri). In order:
//
//   - percent-encoded unreserved characters (RFC 3986 section 2.3:
//     letters, digits, '-', '.', '_', '~') are decoded, and the hex digits
//     of the other escapes uppercased (section 6.2.2);
//   - %2F, %5C and '\' follow esc;
//   - runs of '/' are merged into one;
//   - the dot segments "." and ".." are removed (section 5.2.4); ".."
//     never climbs above the root.
//
// The decoded form decodes every escape but %2F and %5C under
// KeepSlashes. A path that needs no change is returned as is, without
// allocating. A path that does not start with '/' (the "*" of OPTIONS)
// is returned unchanged.
func NormalizePath(path string, esc EscapedSlashes) (escaped, decoded string, err error) {
	if path == "" || path[0] != '/' {
		return path, path, nil
	}
	if pathIsNormal(path) {
		return path, path, nil
	}
	// First pass: escapes and slashes, into segments joined by '/'.
	b := make([]byte, 0, len(path)+8)
	for i := 0; i < len(path); i++ {
		c := path[i]
		switch {
		case c == '%' && i+2 < len(path) && ishex(path[i+1]) && ishex(path[i+2]):
			v := unhex(path[i+1])<<4 | unhex(path[i+2])
			i += 2
			switch {
			case unreserved(v):
				b = append(b, v)
			case v == '/' || v == '\\':
				switch esc {
				case RejectSlashes:
					return "", "", ErrEscapedSlash
				case UnescapeSlashes:
					b = append(b, '/')
				default:
					b = append(b, '%', upperHex[v>>4], upperHex[v&15])
				}
			default:
				b = append(b, '%', upperHex[v>>4], upperHex[v&15])
			}
		case c == '\\':
			switch esc {
			case RejectSlashes:
				return "", "", ErrEscapedSlash
			case UnescapeSlashes:
				b = append(b, '/')
			default:
				b = append(b, '%', '5', 'C')
			}
		case c == '%':
			// A '%' that starts no escape is sent encoded, as url.URL
			// would.
			b = append(b, '%', '2', '5')
		default:
			b = append(b, c)
		}
	}
	escaped = removeDotSegments(mergeSlashes(b))
	return escaped, decodePath(escaped, esc == KeepSlashes), nil
}

const upperHex = "0123456789ABCDEF"

// pathIsNormal reports whether path needs no change: no escape, no
// backslash, no empty segment and no dot segment.
func pathIsNormal(path string) bool {
	for i := 0; i < len(path); i++ {
		switch path[i] {
		case '%', '\\':
			return false
		case '/':
			rest := path[i+1:]
			switch {
			case rest == "", rest[0] != '/' && rest[0] != '.':
				continue
			case rest[0] == '/':
				return false
			}
			// A segment starting with '.': "." or ".." are dot segments.
			seg := rest
			if j := strings.IndexByte(rest, '/'); j >= 0 {
				seg = rest[:j]
			}
			if seg == "." || seg == ".." {
				return false
			}
		}
	}
	return true
}

// mergeSlashes replaces runs of '/' with one.
func mergeSlashes(b []byte) []byte {
	out := b[:0]
	for i, c := range b {
		if c == '/' && i > 0 && b[i-1] == '/' {
			continue
		}
		out = append(out, c)
	}
	return out
}

// removeDotSegments applies RFC 3986 section 5.2.4 to an absolute path
// without empty segments; the result keeps a trailing '/' when the input
// ends in a dot segment or '/'.
func removeDotSegments(b []byte) string {
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); {
		// b[i] is '/': take the segment after it.
		j := i + 1
		for j < len(b) && b[j] != '/' {
			j++
		}
		seg := string(b[i+1 : j])
		last := j == len(b)
		switch seg {
		case ".":
			if last {
				out = append(out, '/')
			}
		case "..":
			if k := lastSlash(out); k >= 0 {
				out = out[:k]
			}
			if last {
				out = append(out, '/')
			}
		default:
			out = append(out, '/')
			out = append(out, seg...)
		}
		i = j
	}
	if len(out) == 0 {
		return "/"
	}
	return string(out)
}

func lastSlash(b []byte) int {
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] == '/' {
			return i
		}
	}
	return -1
}

// decodePath decodes the escapes of a normalised path, but %2F and %5C
// when keepSlashes is set.
func decodePath(p string, keepSlashes bool) string {
	if strings.IndexByte(p, '%') < 0 {
		return p
	}
	b := make([]byte, 0, len(p))
	for i := 0; i < len(p); i++ {
		if p[i] == '%' && i+2 < len(p) {
			v := unhex(p[i+1])<<4 | unhex(p[i+2])
			if !(keepSlashes && (v == '/' || v == '\\')) {
				b = append(b, v)
				i += 2
				continue
			}
		}
		b = append(b, p[i])
	}
	return string(b)
}

func unreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

func ishex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}
