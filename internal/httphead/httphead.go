// Package httphead reads the head of an HTTP/1.x message (its start line
// and header fields) from a bufio.Reader as one string, and parses its
// header fields into an http.Header whose keys and values are substrings
// of that string: one allocation for the text of the whole head, one for
// the values' slices, none per field. Both pkg/proxy (origin responses)
// and pkg/server/h1 (client requests) build on it. OriginForm parses the
// common request target without allocating, for h1 and h2.
//
// The parser follows net/textproto's Reader.ReadMIMEHeader byte for byte,
// as http.ReadRequest and http.ReadResponse use it: lines end at LF, one
// CR before it dropped; a first field line that starts with SP or HTAB is
// refused; a line that starts with SP or HTAB continues the previous field
// (obs-fold), joined with one space, each line trimmed of SP and HTAB; a
// field line without a colon is refused; a key of token characters is
// canonicalised (textproto.CanonicalMIMEHeaderKey), a key with a space
// before its colon is kept as sent, a key with any other byte is refused;
// a value with a control byte other than HTAB, or DEL, is refused; the
// value's leading and trailing SP and HTAB are dropped. The fuzz targets
// of pkg/proxy (FuzzReadResponse) and pkg/server/h1 (FuzzReadRequest)
// compare the result with net/http's parsers.
package httphead

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// End scans b, from offset from (the start of a line), for the end of a
// head: its first empty line (nothing before the LF but perhaps one CR),
// the start line included. It returns the length of the head through that
// line's LF, or -1 and the offset of the first line not yet complete.
func End(b []byte, from int) (end, next int) {
	for from < len(b) {
		i := bytes.IndexByte(b[from:], '\n')
		if i < 0 {
			return -1, from
		}
		if i == 0 || i == 1 && b[from] == '\r' {
			return from + i + 1, from + i + 1
		}
		from += i + 1
	}
	return -1, from
}

// Read reads the next head from br and returns it as one string, through
// the LF of its empty line, which it discards from br. What follows the
// head stays in br.
//
// A head that fits br's buffer is converted from it at once; a longer one
// is gathered line by line. While the head is incomplete, startLine (when
// not nil) is called once with the start line, without its line end, as
// soon as it is complete: an error from it ends the read, as net/http
// fails on a malformed start line without waiting for the header fields.
//
// A read error is returned as is, io.EOF as io.ErrUnexpectedEOF; the
// reader below br bounds the size of the head.
func Read(br *bufio.Reader, startLine func(line []byte) error) (string, error) {
	from := 0
	checked := startLine == nil
	var buf []byte
	for {
		buf, _ = br.Peek(br.Buffered())
		end, next := End(buf, from)
		if end > 0 {
			head := string(buf[:end])
			br.Discard(end)
			return head, nil
		}
		from = next
		if !checked && from > 0 {
			checked = true
			if err := startLine(firstLine(buf)); err != nil {
				return "", err
			}
		}
		if len(buf) >= br.Size() {
			break
		}
		more, err := br.Peek(len(buf) + 1)
		if err != nil && len(more) == len(buf) {
			return "", eof(err)
		}
	}
	// Longer than the buffer: gather it.
	acc := make([]byte, len(buf), 2*len(buf))
	copy(acc, buf)
	br.Discard(len(buf))
	for {
		line, err := br.ReadSlice('\n')
		acc = append(acc, line...)
		if err == bufio.ErrBufferFull {
			// No line ended: nothing to scan again.
			continue
		}
		if err != nil {
			return "", eof(err)
		}
		end, next := End(acc, from)
		if end > 0 {
			return string(acc[:end]), nil
		}
		from = next
		if !checked && from > 0 {
			checked = true
			if err := startLine(firstLine(acc)); err != nil {
				return "", err
			}
		}
	}
}

func eof(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// firstLine returns the first line of b, which is complete, without its
// line end.
func firstLine(b []byte) []byte {
	line := b[:bytes.IndexByte(b, '\n')]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line
}

// Line returns the first line of s without its line end (LF, or CR LF, as
// bufio.Reader.ReadLine drops it), and the rest of s after the LF.
func Line(s string) (line, rest string) {
	i := strings.IndexByte(s, '\n')
	if i < 0 {
		return s, ""
	}
	line, rest = s[:i], s[i+1:]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, rest
}

// ErrMalformed is the cause of every refusal of a header field line.
var ErrMalformed = errors.New("malformed MIME header line")

func malformed(kind, line string) error {
	if len(line) > 80 {
		line = line[:80]
	}
	return fmt.Errorf("%w: %s: %q", ErrMalformed, kind, line)
}

// ParseFields parses the header field lines of fields (a head after its
// start line, through its empty line, as Read returns it) into h, which
// should be empty. Keys and values are substrings of fields, except for
// keys that are not canonical as sent (common ones come from a table, the
// others are built) and for folded values. Every field's first value is
// a slice of one new block of strings, its capacity cut to its length, so
// that appending to a field's values never overwrites another's, and a
// caller may keep the slices when h is cleared for the next message.
func ParseFields(h http.Header, fields string) error {
	// Each field line takes one string of the block, up to net/textproto's
	// bound: a head of many short lines is not worth a huge block.
	var strs []string
	if n := strings.Count(fields, "\n") - 1; n > 0 {
		strs = make([]string, min(n, maxBlock))
	}
	var canon [64]byte
	for first := true; ; first = false {
		if fields == "" {
			return malformed("no empty line after the header fields", "")
		}
		line, rest := Line(fields)
		if line == "" {
			return nil
		}
		if first && (line[0] == ' ' || line[0] == '\t') {
			return malformed("initial line starts with white space", line)
		}
		if strings.IndexByte(line, ':') < 0 {
			return malformed("missing colon", line)
		}
		kv := trim(line)
		if rest != "" && (rest[0] == ' ' || rest[0] == '\t') {
			// obs-fold: the continuation lines, joined with one space,
			// in a buffer of their size (not the rest of the head's: a
			// head of many folded fields must not cost its size squared).
			b := make([]byte, 0, len(kv)+foldedLen(rest))
			b = append(b, kv...)
			for rest != "" && (rest[0] == ' ' || rest[0] == '\t') {
				var cont string
				cont, rest = Line(rest)
				b = append(b, ' ')
				b = append(b, trim(cont)...)
			}
			kv = string(b)
		}
		fields = rest
		k, v, _ := strings.Cut(kv, ":")
		key, ok := canonicalKey(k, &canon)
		if !ok {
			return malformed("invalid field name", kv)
		}
		for i := 0; i < len(v); i++ {
			if !validValueByte(v[i]) {
				return malformed("invalid field value", kv)
			}
		}
		for v != "" && (v[0] == ' ' || v[0] == '\t') {
			v = v[1:]
		}
		value := v
		vv := h[key]
		if vv == nil && len(strs) > 0 {
			vv, strs = strs[:1:1], strs[1:]
			vv[0] = value
			h[key] = vv
		} else {
			h[key] = append(vv, value)
		}
	}
}

// maxBlock bounds the block of value slices ParseFields makes at once,
// as net/textproto bounds its own.
const maxBlock = 1000

// foldedLen returns the length of the continuation lines at the start of
// s, line ends included.
func foldedLen(s string) int {
	n := 0
	for n < len(s) && (s[n] == ' ' || s[n] == '\t') {
		i := strings.IndexByte(s[n:], '\n')
		if i < 0 {
			return len(s)
		}
		n += i + 1
	}
	return n
}

// trim drops leading and trailing SP and HTAB.
func trim(s string) string {
	i := 0
	for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	s = s[i:]
	n := len(s)
	for n > 0 && (s[n-1] == ' ' || s[n-1] == '\t') {
		n--
	}
	return s[:n]
}

// canonicalKey returns the map key of a field name as
// textproto.CanonicalMIMEHeaderKey makes it, and whether the name is
// acceptable: a name already canonical is returned as is (no allocation),
// a common one comes from a table, and a name with a space is kept as sent
// (net/textproto accepts it, uncanonicalised). An empty name, or one with
// a byte that is neither a token character nor a space, is refused.
func canonicalKey(k string, buf *[64]byte) (string, bool) {
	if k == "" {
		return "", false
	}
	canonical, space, upper := true, false, true
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !tokenByte[c] {
			if c == ' ' {
				space = true
				continue
			}
			return "", false
		}
		if upper && 'a' <= c && c <= 'z' || !upper && 'A' <= c && c <= 'Z' {
			canonical = false
		}
		upper = c == '-'
	}
	if canonical || space {
		return k, true
	}
	var b []byte
	if len(k) <= len(buf) {
		b = buf[:len(k)]
	} else {
		b = make([]byte, len(k))
	}
	upper = true
	for i := 0; i < len(k); i++ {
		c := k[i]
		if upper && 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		} else if !upper && 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b[i] = c
		upper = c == '-'
	}
	if s, ok := common[string(b)]; ok {
		return s, true
	}
	return string(b), true
}

// tokenByte holds the bytes of an RFC 9110 token (a field name).
var tokenByte = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

// validValueByte reports whether c may appear in a field value as
// net/textproto accepts it: anything but the control bytes other than
// HTAB, and DEL.
func validValueByte(c byte) bool {
	return c >= 0x20 && c != 0x7f || c == '\t'
}

// common holds the canonical names of common header fields, so that one
// sent in another case does not allocate (net/textproto's table, and the
// fields origins and clients commonly send).
var common = func() map[string]string {
	m := make(map[string]string)
	for _, k := range []string{
		"Accept", "Accept-Charset", "Accept-Encoding", "Accept-Language", "Accept-Ranges",
		"Access-Control-Allow-Credentials", "Access-Control-Allow-Headers",
		"Access-Control-Allow-Methods", "Access-Control-Allow-Origin",
		"Access-Control-Expose-Headers", "Access-Control-Max-Age", "Age", "Allow", "Alt-Svc",
		"Authorization", "Cache-Control", "Cc", "Connection", "Content-Disposition",
		"Content-Encoding", "Content-Id", "Content-Language", "Content-Length",
		"Content-Location", "Content-Range", "Content-Security-Policy",
		"Content-Transfer-Encoding", "Content-Type", "Cookie", "Date", "Dkim-Signature",
		"Etag", "Expect", "Expires", "Forwarded", "From", "Host", "Idempotency-Key",
		"If-Match", "If-Modified-Since", "If-None-Match", "If-Range", "If-Unmodified-Since",
		"In-Reply-To", "Keep-Alive", "Last-Modified", "Link", "Location", "Message-Id",
		"Mime-Version", "Origin", "Pragma", "Proxy-Authenticate", "Proxy-Authorization",
		"Proxy-Connection", "Range", "Received", "Referer", "Refresh", "Retry-After",
		"Return-Path", "Sec-Fetch-Dest", "Sec-Fetch-Mode", "Sec-Fetch-Site", "Sec-Fetch-User",
		"Server", "Set-Cookie", "Strict-Transport-Security", "Subject", "Te", "To", "Trailer",
		"Transfer-Encoding", "Upgrade", "Upgrade-Insecure-Requests", "User-Agent", "Vary",
		"Via", "Www-Authenticate", "X-Content-Type-Options", "X-Forwarded-For",
		"X-Forwarded-Host", "X-Forwarded-Proto", "X-Frame-Options", "X-Imforwards",
		"X-Powered-By", "X-Real-Ip", "X-Request-Id", "X-Requested-With", "X-Xss-Protection",
	} {
		m[k] = k
	}
	return m
}()
