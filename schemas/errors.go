package schemas

import (
	"errors"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v5"
)

// Leaves returns the errors worth showing a user from a validation error
// returned by a compiled schema: the leaves of its tree of causes, in
// schema order, without duplicates (the same message at the same instance
// location, which the top-level schema and a kind's schema may both
// report). A failed oneOf or anyOf is one leaf whose message joins the
// messages of its alternatives with " or ", such as "missing properties:
// 'certificate' or missing properties: 'certificateFile'". Leaves returns
// nil if err is not a *jsonschema.ValidationError.
func Leaves(err error) []*jsonschema.ValidationError {
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return nil
	}
	var out []*jsonschema.ValidationError
	seen := map[[2]string]bool{}
	add := func(e *jsonschema.ValidationError) {
		k := [2]string{e.InstanceLocation, e.Message}
		if !seen[k] {
			seen[k] = true
			out = append(out, e)
		}
	}
	var walk func(*jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		switch {
		case len(e.Causes) == 0:
			add(e)
		case strings.HasSuffix(e.KeywordLocation, "/oneOf") || strings.HasSuffix(e.KeywordLocation, "/anyOf"):
			var msgs []string
			for _, c := range e.Causes {
				for _, l := range Leaves(c) {
					msgs = append(msgs, l.Message)
				}
			}
			add(&jsonschema.ValidationError{
				KeywordLocation:         e.KeywordLocation,
				AbsoluteKeywordLocation: e.AbsoluteKeywordLocation,
				InstanceLocation:        e.InstanceLocation,
				Message:                 strings.Join(msgs, " or "),
			})
		default:
			for _, c := range e.Causes {
				walk(c)
			}
		}
	}
	walk(ve)
	return out
}
