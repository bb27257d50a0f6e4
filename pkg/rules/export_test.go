package rules

import (
	"slices"
	"time"
)

// Helpers for the tests of this package.

// strippedNames returns the canonical names of every header a request-phase
// rule adds or filters, inactive rules included, sorted. The serve path
// removes them, in every case and '_'/'-' spelling, from client requests
// (see StripHeaders) so that clients cannot spoof identity headers.
func (a *Application) strippedNames() []string {
	if a == nil {
		return nil
	}
	return slices.Clone(a.headerNames)
}

// setClock replaces the clock of the rate limiters (default time.Now); call
// it before the firewall serves.
func (f *Firewall) setClock(now func() time.Time) { f.now = now }
