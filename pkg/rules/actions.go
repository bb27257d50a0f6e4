package rules

import (
	"slices"
)

// Header is a header to add.
type Header struct {
	Name  string
	Value string
}

// RequestActions is what the request phase decided. The caller owns it and
// reuses it across requests: EvaluateRequest resets it, keeping its storage.
type RequestActions struct {
	// Add are the headers to add to the origin request, in order, after
	// Filter has been applied.
	Add []Header
	// Filter are the canonical names of the headers to remove from the
	// origin request.
	Filter []string
	// Path replaces the path and query sent to the origin when not empty.
	Path string
	// Status is non-zero when the edge answers itself: 301 or 302 (with
	// Location), 403 (deny) or 204 (noContent).
	Status   int
	Location string
	// Rule is the name of the rule whose behavior ended the phase, if any.
	Rule string

	b builder
}

// Reset empties a, keeping its storage.
func (a *RequestActions) Reset() {
	a.Add, a.Filter = a.Add[:0], a.Filter[:0]
	a.Path, a.Location, a.Rule, a.Status = "", "", "", 0
	a.b.reset()
}

// ResponseActions is what the response phase decided; like RequestActions
// it is caller-owned and reusable.
type ResponseActions struct {
	// Add are the headers to add to the response, after Filter has been
	// applied.
	Add []Header
	// Filter are the canonical names of the origin's headers to remove.
	Filter []string
	// Rule is the name of the rule whose deliver ended the phase, if any.
	Rule string

	b builder
}

// Reset empties a, keeping its storage.
func (a *ResponseActions) Reset() {
	a.Add, a.Filter, a.Rule = a.Add[:0], a.Filter[:0], ""
	a.b.reset()
}

// builder renders templates into one buffer and turns it into a string once
// per phase, so that any number of rendered values cost one allocation.
type builder struct {
	buf  []byte
	pend []pending
}

type pending struct {
	slot       int // index into Add, or slotPath, slotLocation
	start, end int
}

const (
	slotPath     = -1
	slotLocation = -2
)

func (b *builder) reset() { b.buf, b.pend = b.buf[:0], b.pend[:0] }

// render returns the template's value when it needs no buffer, else
// records it for slot and returns "".
func (b *builder) render(t *Template, r *Request, resp *ResponseView, slot int) string {
	if s, ok := t.direct(r, resp); ok {
		return s
	}
	start := len(b.buf)
	b.buf = t.appendTo(b.buf, r, resp)
	b.pend = append(b.pend, pending{slot: slot, start: start, end: len(b.buf)})
	return ""
}

// drop forgets pending values of slot (a path rewritten twice).
func (b *builder) drop(slot int) {
	b.pend = slices.DeleteFunc(b.pend, func(p pending) bool { return p.slot == slot })
}

// finish fills the pending values and removes filtered headers (empty
// names) from add.
func (b *builder) finish(add []Header, path, location *string) []Header {
	if len(b.pend) > 0 {
		s := string(b.buf)
		for _, p := range b.pend {
			v := s[p.start:p.end]
			switch p.slot {
			case slotPath:
				*path = v
			case slotLocation:
				*location = v
			default:
				add[p.slot].Value = v
			}
		}
	}
	return slices.DeleteFunc(add, func(h Header) bool { return h.Name == "" })
}

func addHeader(add []Header, b *builder, name string, t *Template, r *Request, resp *ResponseView) []Header {
	add = append(add, Header{Name: name})
	add[len(add)-1].Value = b.render(t, r, resp, len(add)-1)
	return add
}

// filterHeader removes the headers added so far under name (in any case or
// '_'/'-' spelling; key is its variantKey) and records the filter.
func filterHeader(add []Header, filter []string, name, key string) []string {
	for i := range add {
		if sameVariant(add[i].Name, key) {
			add[i].Name = "" // removed by finish
		}
	}
	if !slices.Contains(filter, name) {
		filter = append(filter, name)
	}
	return filter
}
