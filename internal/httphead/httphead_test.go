package httphead

import (
	"bufio"
	"errors"
	"io"
	"net/http"
	"net/textproto"
	"runtime"
	"strings"
	"testing"
	"time"
	"unsafe"
)

func TestEnd(t *testing.T) {
	for _, tt := range []struct {
		in        string
		end, next int
	}{
		{"GET / HTTP/1.1\r\nHost: a\r\n\r\nbody", 27, 27},
		{"GET / HTTP/1.1\nHost: a\n\n", 24, 24},
		{"GET / HTTP/1.1\r\nHost: a\r\n", -1, 25},
		{"GET / HTTP/1.1\r\nHost: a", -1, 16},
		{"GET / HTTP/1.1\r\n  \r\n\r\n", 22, 22}, // a line of spaces continues a field
		{"GET / HTTP/1.1\r\n\r\r\n\r\n", 21, 21}, // "\r\r\n" is not empty
		{"\r\nGET", 2, 2},                        // an empty start line ends the head: the parser refuses it
	} {
		if end, next := End([]byte(tt.in), 0); end != tt.end || next != tt.next {
			t.Errorf("End(%q) = %d, %d; want %d, %d", tt.in, end, next, tt.end, tt.next)
		}
	}
}

// pieces delivers its strings one Read at a time.
type pieces []string

func (p *pieces) Read(b []byte) (int, error) {
	if len(*p) == 0 {
		return 0, io.EOF
	}
	n := copy(b, (*p)[0])
	if n == len((*p)[0]) {
		*p = (*p)[1:]
	} else {
		(*p)[0] = (*p)[0][n:]
	}
	return n, nil
}

// Read hands startLine the start line alone, however the head arrives,
// and returns the head whole.
func TestReadPieces(t *testing.T) {
	head := "GET / HTTP/1.1\r\nHost: a\r\nX: " + strings.Repeat("v", 100) + "\r\n\r\n"
	for _, split := range [][]string{
		{head + "body"},
		{"G", head[1:]},
		{head[:30], head[30:]},
		{head[:20], head[20:40], head[40:] + "body"},
	} {
		for _, size := range []int{16, 64, 4096} {
			p := pieces(append([]string(nil), split...))
			br := bufio.NewReaderSize(&p, size)
			var lines []string
			got, err := Read(br, func(line []byte) error {
				lines = append(lines, string(line))
				return nil
			})
			if err != nil || got != head {
				t.Fatalf("split %q, buffer %d: %q, %v", split, size, got, err)
			}
			if len(lines) > 1 || len(lines) == 1 && lines[0] != "GET / HTTP/1.1" {
				t.Fatalf("split %q, buffer %d: start line checked as %q", split, size, lines)
			}
		}
	}
}

func TestReadErrors(t *testing.T) {
	bad := errors.New("bad start line")
	p := pieces{"HELLO\r\n", "X: 1\r\n"}
	if _, err := Read(bufio.NewReaderSize(&p, 16), func([]byte) error { return bad }); err != bad {
		t.Errorf("a refused start line: %v", err)
	}
	p = pieces{"GET / HTTP/1.1\r\nHost: a\r\n"}
	if _, err := Read(bufio.NewReaderSize(&p, 4096), nil); err != io.ErrUnexpectedEOF {
		t.Errorf("a head cut short: %v, want io.ErrUnexpectedEOF", err)
	}
	p = pieces{"GET / HTTP/1.1\r\nHost: " + strings.Repeat("a", 100)}
	if _, err := Read(bufio.NewReaderSize(&p, 16), nil); err != io.ErrUnexpectedEOF {
		t.Errorf("a long head cut short: %v, want io.ErrUnexpectedEOF", err)
	}
}

// canonicalKey agrees with textproto.CanonicalMIMEHeaderKey on the keys
// it accepts, keeps a key with a space as sent, and refuses the others.
func TestCanonicalKey(t *testing.T) {
	var buf [64]byte
	for _, k := range []string{
		"host", "HOST", "Host", "content-type", "x-request-id", "X-REQUEST-ID", "x--a", "-a", "a-",
		"x_under_score", "1abc", strings.Repeat("long-key-", 10), "Space Key ", "",
		"tab\tkey", "caf\xc3\xa9", "a:b", "a\x00",
	} {
		got, ok := canonicalKey(k, &buf)
		valid := k != "" && strings.IndexFunc(k, func(r rune) bool { return r >= 0x80 || !tokenByte[r] && r != ' ' }) < 0
		switch {
		case ok != valid:
			t.Errorf("canonicalKey(%q) ok = %v, want %v", k, ok, valid)
		case ok && strings.Contains(k, " ") && got != k:
			t.Errorf("canonicalKey(%q) = %q, want it as sent", k, got)
		case ok && !strings.Contains(k, " ") && got != textproto.CanonicalMIMEHeaderKey(k):
			t.Errorf("canonicalKey(%q) = %q, want %q", k, got, textproto.CanonicalMIMEHeaderKey(k))
		}
	}
	if n := testing.AllocsPerRun(10, func() { canonicalKey("content-type", &buf) }); n != 0 {
		t.Errorf("a common key in lower case: %v allocations", n)
	}
}

// A head of many folded fields costs memory in proportion to its size,
// not to its size squared (h1 refuses obs-fold, but only once the head is
// parsed).
func TestParseFieldsFoldedIsLinear(t *testing.T) {
	var b strings.Builder
	for range 5000 {
		b.WriteString("X: a\r\n b\r\n")
	}
	b.WriteString("\r\n")
	fields := b.String()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	h := make(http.Header)
	if err := ParseFields(h, fields); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if len(h["X"]) != 5000 || h["X"][0] != "a b" {
		t.Fatalf("X = %d values, first %q", len(h["X"]), h["X"][0])
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 40*uint64(len(fields)) {
		t.Errorf("%d bytes allocated for a head of %d bytes", n, len(fields))
	}
}

// TestDate: the cached Date value is the current second's, in
// http.TimeFormat.
func TestDate(t *testing.T) {
	before := time.Now().UTC().Truncate(time.Second)
	got, err := http.ParseTime(Date())
	after := time.Now().UTC()
	if err != nil || got.Before(before) || got.After(after) {
		t.Fatalf("Date() = %v (%v), want between %v and %v", got, err, before, after)
	}
	// Within one second the value is the cached string itself, not
	// formatted again.
	for range 3 {
		sec := time.Now().Unix()
		a, b := Date(), Date()
		if time.Now().Unix() == sec {
			if unsafe.StringData(a) != unsafe.StringData(b) {
				t.Fatal("two calls in one second formatted the date twice")
			}
			return
		}
	}
}
