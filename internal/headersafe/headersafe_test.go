package headersafe

import "testing"

func TestString(t *testing.T) {
	for in, want := range map[string]string{
		"":                             "",
		"plain":                        "plain",
		"CN=partner,O=Bank":            "CN=partner,O=Bank",
		"100%":                         "100%",
		"a\r\nInjected: 1":             "a%0D%0AInjected: 1",
		"\x00\x1f\x20\x7e\x7f\x80\xff": "%00%1F ~%7F%80%FF",
		"tab\there":                    "tab%09here",
		"Paraná":                       "Paran%C3%A1",
	} {
		if got := String(in); got != want {
			t.Errorf("String(%q) = %q, want %q", in, got, want)
		}
		if got := string(Append([]byte("prefix:"), in)); got != "prefix:"+want {
			t.Errorf("Append(%q) = %q, want %q", in, got, "prefix:"+want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { String("nothing to escape") }); n != 0 {
		t.Errorf("String allocates %v times for a safe value", n)
	}
}

// FuzzHeaderSafe: the result holds only visible ASCII and spaces, escaping
// twice changes nothing, text that needs no escaping is kept as is, and
// Append writes what String returns.
func FuzzHeaderSafe(f *testing.F) {
	for _, s := range []string{"", "plain", "a\r\nb", "\x00\x7f", "Zürich", "100%", "a\tb", "%0A", "日本"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := String(s)
		for i := 0; i < len(got); i++ {
			if c := got[i]; c < 0x20 || c >= 0x7f {
				t.Fatalf("String(%q) = %q holds %#x", s, got, c)
			}
		}
		if again := String(got); again != got {
			t.Fatalf("not idempotent: %q then %q", got, again)
		}
		if Is(s) != (got == s) {
			t.Fatalf("Is(%q) disagrees with String", s)
		}
		if a := string(Append([]byte("x"), s)); a != "x"+got {
			t.Fatalf("Append(%q) = %q, String gives %q", s, a, got)
		}
	})
}

// TestSafePrefixEveryByte: the word-at-a-time scan stops at the first
// byte that needs escaping, for every byte value at every position of a
// word and of the tail.
func TestSafePrefixEveryByte(t *testing.T) {
	// 76 bytes: two 32-byte steps, one 8-byte step and a tail of 4.
	base := []byte("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-._~!$&'()*+,;")
	for n := 0; n <= len(base); n++ {
		if got := safePrefix(string(base[:n])); got != n {
			t.Fatalf("safePrefix of %d safe bytes = %d", n, got)
		}
	}
	for c := 0; c < 256; c++ {
		for pos := 0; pos < len(base); pos++ {
			b := append([]byte(nil), base...)
			b[pos] = byte(c)
			// Also with an unsafe byte after it, so the first one is found.
			b = append(b, 0x00)
			want := len(b) - 1
			if needsEscape(byte(c)) {
				want = pos
			}
			if got := safePrefix(string(b)); got != want {
				t.Fatalf("byte %#x at %d: safePrefix = %d, want %d", c, pos, got, want)
			}
		}
	}
}

func BenchmarkIsCertificate(b *testing.B) {
	s := string(make([]byte, 0, 1300))
	for len(s) < 1300 {
		s += "-----BEGIN%20CERTIFICATE-----%0AMIIB"
	}
	b.SetBytes(int64(len(s)))
	for b.Loop() {
		if !Is(s) {
			b.Fatal("unsafe")
		}
	}
}
