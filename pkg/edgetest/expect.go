package edgetest

import (
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/edgectl/edgectl/pkg/manifest"
	"github.com/edgectl/edgectl/pkg/pki"
)

// Failure is one expectation that did not hold.
type Failure struct {
	// Field is the expectation, such as status or originHeaders.Client-Cert-Subject.
	Field string `json:"field"`
	// Expected is what the case declared.
	Expected string `json:"expected"`
	// Got is what the case observed.
	Got string `json:"got"`
}

func (f Failure) String() string {
	return fmt.Sprintf("%s: expected %s, got %s", f.Field, f.Expected, f.Got)
}

// matcher is an expected header value: exact, or a RE2 regular expression
// after "~".
type matcher struct {
	exact string
	re    *regexp.Regexp
}

func newMatcher(v string) (matcher, error) {
	if expr, ok := strings.CutPrefix(v, "~"); ok {
		re, err := regexp.Compile(expr)
		if err != nil {
			return matcher{}, fmt.Errorf("invalid regular expression: %v", err)
		}
		return matcher{re: re}, nil
	}
	return matcher{exact: v}, nil
}

// match reports whether the header's values, joined with ", " the way
// HTTP combines repeated fields, match. An exact value therefore fails
// when the header was sent twice (a spoofed value next to the edge's own).
func (m matcher) match(values []string) bool {
	if len(values) == 0 {
		return false
	}
	v := strings.Join(values, ", ")
	if m.re != nil {
		return m.re.MatchString(v)
	}
	return v == m.exact
}

func (m matcher) String() string {
	if m.re != nil {
		return "a value matching " + strconv.Quote(m.re.String())
	}
	return strconv.Quote(m.exact)
}

func describeValues(values []string) string {
	if len(values) == 0 {
		return "no such header"
	}
	return strconv.Quote(strings.Join(values, ", "))
}

// headerValues returns the values of name in h, comparing names without
// regard to case and without canonicalizing them (so that
// client_cert_subject and Client-Cert-Subject stay different names).
func headerValues(h http.Header, name string) []string {
	var out []string
	for k, vs := range h {
		if strings.EqualFold(k, name) {
			out = append(out, vs...)
		}
	}
	return out
}

// expectedHandshake is the handshake a case expects: the declared one, else
// rejected when an alert is expected, else accepted when any HTTP or origin
// expectation is declared, else "" (no expectation).
func expectedHandshake(e manifest.Expect) string {
	switch {
	case e.Handshake != "":
		return e.Handshake
	case e.Alert != "":
		return HandshakeRejected
	case e.Status != 0 || len(e.Headers) > 0 || e.Body != "" || len(e.OriginHeaders) > 0 || (e.OriginReached != nil && *e.OriginReached):
		return HandshakeAccepted
	}
	return ""
}

func describeOutcome(o *Observation) string {
	switch {
	case o.Handshake == HandshakeRejected && o.Alert != "":
		return "rejected (alert " + o.Alert + ")"
	case o.Handshake == HandshakeRejected:
		return "rejected (" + o.Detail + ")"
	case o.Status != 0:
		return fmt.Sprintf("accepted (status %d)", o.Status)
	case o.Detail != "":
		return "accepted (" + o.Detail + ")"
	}
	return o.Handshake
}

// compare returns the expectations of e that o does not meet, in a fixed
// order.
func compare(e manifest.Expect, o *Observation) []Failure {
	var fs []Failure
	fail := func(field, expected, got string) {
		fs = append(fs, Failure{Field: field, Expected: expected, Got: got})
	}
	if want := expectedHandshake(e); want != "" && want != o.Handshake {
		// Nothing else can be compared across a different handshake outcome.
		return []Failure{{Field: "handshake", Expected: want, Got: describeOutcome(o)}}
	}
	if e.Alert != "" {
		want, _ := pki.NormalizeAlert(e.Alert)
		if want != o.Alert {
			got := o.Alert
			if got == "" {
				got = "no alert"
				if o.Detail != "" {
					got += " (" + o.Detail + ")"
				}
			}
			fail("alert", want, got)
		}
	}
	if o.Handshake == HandshakeRejected {
		// The remaining expectations only make sense for origins: a rejected
		// handshake reached nothing.
		if e.OriginReached != nil && *e.OriginReached {
			fail("originReached", "true", "false (the handshake was rejected)")
		}
		return fs
	}
	if e.Status != 0 && e.Status != o.Status {
		got := strconv.Itoa(o.Status)
		if o.Status == 0 {
			got = "no response"
			if o.Detail != "" {
				got += " (" + o.Detail + ")"
			}
		}
		fail("status", strconv.Itoa(e.Status), got)
	}
	for _, name := range sortedKeys(e.Headers) {
		m, err := newMatcher(e.Headers[name])
		if err != nil {
			fail("headers."+name, e.Headers[name], err.Error())
			continue
		}
		if vs := headerValues(o.Header, name); !m.match(vs) {
			fail("headers."+name, m.String(), describeValues(vs))
		}
	}
	if e.Body != "" && !strings.Contains(o.Body, e.Body) {
		fail("body", "a body containing "+strconv.Quote(e.Body), quoteShort(o.Body))
	}
	reached := len(o.Origin) > 0
	if e.OriginReached != nil && *e.OriginReached != reached {
		got := "false"
		if reached {
			got = fmt.Sprintf("true (%d request(s): %s)", len(o.Origin), o.Origin[0].summary())
		}
		fail("originReached", strconv.FormatBool(*e.OriginReached), got)
	}
	if len(e.OriginHeaders) > 0 || len(e.OriginAbsentHeaders) > 0 {
		var h http.Header
		if reached {
			h = o.Origin[len(o.Origin)-1].Header
		}
		for _, name := range sortedKeys(e.OriginHeaders) {
			m, err := newMatcher(e.OriginHeaders[name])
			if err != nil {
				fail("originHeaders."+name, e.OriginHeaders[name], err.Error())
				continue
			}
			if !reached {
				fail("originHeaders."+name, m.String(), "origin not reached")
				continue
			}
			if vs := headerValues(h, name); !m.match(vs) {
				fail("originHeaders."+name, m.String(), describeValues(vs))
			}
		}
		for _, name := range e.OriginAbsentHeaders {
			for _, req := range o.Origin {
				if vs := headerValues(req.Header, name); len(vs) > 0 {
					fail("originAbsentHeaders."+name, "no such header", describeValues(vs))
					break
				}
			}
		}
	}
	return fs
}

// quoteShort quotes s, cut to 200 bytes.
func quoteShort(s string) string {
	const max = 200
	if len(s) > max {
		return strconv.Quote(s[:max]) + "..."
	}
	return strconv.Quote(s)
}
