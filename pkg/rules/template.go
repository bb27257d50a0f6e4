package rules

import (
	"fmt"
	"strings"

	"github.com/edgectl/edgectl/internal/headersafe"
)

// Template is a compiled value with ${variable} references, such as a header
// value, a rewritten path, a redirect location or the origin's Host header.
// Literal parts are kept as written; every variable value is made
// header-safe (control bytes, DEL and non-ASCII bytes percent-encoded) when
// it is rendered. A Template is immutable and safe for concurrent use.
type Template struct {
	raw  string
	segs []segment
}

type segment struct {
	lit   string
	v     variable
	isVar bool
}

// CompileTemplate compiles s, whose variables must exist in phase (request
// or response); path positions the errors.
func CompileTemplate(path, s, phase string) (*Template, []FieldError) {
	t := &Template{raw: s}
	var errs []FieldError
	bad := func(format string, args ...any) {
		errs = append(errs, FieldError{Path: path, Message: fmt.Sprintf(format, args...)})
	}
	lit := func(l string) {
		if l == "" {
			return
		}
		for i := 0; i < len(l); i++ {
			if c := l[i]; c < 0x20 || c == 0x7f {
				bad("%q contains the control character %U, which is not allowed in a header, path or URL", s, rune(c))
				return
			}
		}
		if n := len(t.segs); n > 0 && !t.segs[n-1].isVar {
			t.segs[n-1].lit += l
			return
		}
		t.segs = append(t.segs, segment{lit: l})
	}
	rest := s
	for {
		i := strings.Index(rest, "${")
		if i < 0 {
			lit(rest)
			break
		}
		lit(rest[:i])
		end := strings.IndexByte(rest[i+2:], '}')
		if end < 0 {
			bad("unterminated \"${\" in %q: a variable is written ${name}", s)
			break
		}
		name := rest[i+2 : i+2+end]
		rest = rest[i+2+end+1:]
		if name == "" {
			bad("empty variable \"${}\" in %q", s)
			continue
		}
		v, msg := lookupAppVar(name, phase)
		if msg != "" {
			bad("%s", msg)
			continue
		}
		t.segs = append(t.segs, segment{v: v, isVar: true})
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return t, nil
}

// CheckTemplate reports the problems of a template without keeping it.
func CheckTemplate(path, s, phase string) []FieldError {
	_, errs := CompileTemplate(path, s, phase)
	return errs
}

// String returns the template as written.
func (t *Template) String() string { return t.raw }

// Render returns the template's value for r (and resp in the response
// phase, else nil). A literal template, or a lone variable whose value needs
// no escaping, does not allocate.
func (t *Template) Render(r *Request, resp *ResponseView) string {
	if s, ok := t.direct(r, resp); ok {
		return s
	}
	return string(t.appendTo(nil, r, resp))
}

// direct returns the value when it needs no buffer.
func (t *Template) direct(r *Request, resp *ResponseView) (string, bool) {
	switch len(t.segs) {
	case 0:
		return "", true
	case 1:
		seg := &t.segs[0]
		if !seg.isVar {
			return seg.lit, true
		}
		if s, _ := r.value(&seg.v, resp); headersafe.Is(s) {
			return s, true
		}
	}
	return "", false
}

// appendTo appends the rendered template to dst.
func (t *Template) appendTo(dst []byte, r *Request, resp *ResponseView) []byte {
	for i := range t.segs {
		seg := &t.segs[i]
		if !seg.isVar {
			dst = append(dst, seg.lit...)
			continue
		}
		s, _ := r.value(&seg.v, resp)
		dst = headersafe.Append(dst, s)
	}
	return dst
}
