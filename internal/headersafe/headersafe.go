// Package headersafe escapes values for HTTP header fields: every control
// byte (0x00-0x1F and DEL) and every byte of 0x80 or more is written as
// "%XX" (uppercase hex), and every other byte, "%" included, is kept. It
// imports nothing, so that both pkg/pki, which formats certificate values,
// and pkg/rules, which renders header templates and may reach no sockets,
// use the one implementation.
package headersafe

// String returns s escaped, or s itself when nothing needs escaping.
func String(s string) string {
	if Is(s) {
		return s
	}
	return string(Append(make([]byte, 0, len(s)+8), s))
}

// Append appends s to dst escaped, without allocating when dst has room.
func Append(dst []byte, s string) []byte {
	const digits = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		c := s[i]
		if needsEscape(c) {
			dst = append(dst, '%', digits[c>>4], digits[c&0x0f])
		} else {
			dst = append(dst, c)
		}
	}
	return dst
}

// Is reports whether String would return s unchanged.
func Is(s string) bool {
	for i := 0; i < len(s); i++ {
		if needsEscape(s[i]) {
			return false
		}
	}
	return true
}

func needsEscape(c byte) bool { return c < 0x20 || c >= 0x7f }
