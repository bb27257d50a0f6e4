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
	safe := safePrefix(s)
	dst = append(dst, s[:safe]...)
	for i := safe; i < len(s); i++ {
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
func Is(s string) bool { return safePrefix(s) == len(s) }

// safePrefix returns the length of s's longest prefix that needs no
// escaping. It tests 32 bytes at a time: identity headers carry
// certificates of a kilobyte or more on every request.
func safePrefix(s string) int {
	i := 0
	// Four words at a time first: their tests are independent, so the
	// processor runs them side by side.
	for ; i+32 <= len(s); i += 32 {
		w := s[i : i+32] // one bounds check for the four loads
		if escapes(le64(w[0:8]))|escapes(le64(w[8:16]))|escapes(le64(w[16:24]))|escapes(le64(w[24:32])) != 0 {
			break
		}
	}
	for ; i+8 <= len(s); i += 8 {
		if escapes(le64(s[i:i+8])) != 0 {
			break
		}
	}
	for ; i < len(s); i++ {
		if needsEscape(s[i]) {
			break
		}
	}
	return i
}

// escapes returns a word with the high bit of each of x's bytes that may
// need escaping set; zero when none does. A byte below 0x20 (Bit
// Twiddling Hacks' hasless), or above 0x7E (adding 1 sets the high bit of
// 0x7F; 0x80 and up have it). A carry between bytes can only flag a byte
// after one that needs escaping, which the byte loop then finds first.
func escapes(x uint64) uint64 {
	const (
		ones  = 0x0101010101010101
		highs = 0x8080808080808080
	)
	return ((x-0x20*ones)&^x | (x + ones) | x) & highs
}

// le64 reads the eight bytes of w (len(w) == 8) as one little-endian
// word; the compiler makes it one load.
func le64(w string) uint64 {
	_ = w[7]
	return uint64(w[0]) | uint64(w[1])<<8 | uint64(w[2])<<16 | uint64(w[3])<<24 |
		uint64(w[4])<<32 | uint64(w[5])<<40 | uint64(w[6])<<48 | uint64(w[7])<<56
}

func needsEscape(c byte) bool { return c < 0x20 || c >= 0x7f }
