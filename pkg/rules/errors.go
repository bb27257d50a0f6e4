package rules

// FieldError is a problem found while compiling, at a field path relative to
// the resource document, such as "spec.rules[0].criteria[0][1].argument".
type FieldError struct {
	Path    string
	Message string
	// Warning marks a problem that does not prevent serving.
	Warning bool
}

// Error implements error.
func (e FieldError) Error() string { return e.Path + ": " + e.Message }

// HasErrors reports whether errs holds a problem that prevents serving, as
// opposed to warnings only.
func HasErrors(errs []FieldError) bool {
	for _, e := range errs {
		if !e.Warning {
			return true
		}
	}
	return false
}
