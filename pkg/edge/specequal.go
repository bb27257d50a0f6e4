package edge

import (
	"reflect"
	"slices"

	"github.com/edgectl/edgectl/pkg/manifest"
)

// The equality of normalized specs decides what an incremental compile
// reuses (cache.go). Everything but the rules is compared field by field
// by comparators built once per type with reflect (fieldsEqual), so that a
// field added to a spec is compared without anyone remembering to. The
// rules, most of the bytes of 10,000 applications and firewalls, are
// compared by hand: reflect.DeepEqual costs tens of milliseconds over
// 10,000 domains and the reflect comparators eight times the hand-written
// loops. TestSpecEqualSeesEveryField changes every field of every spec
// type, one at a time, and fails when a change is not seen. Structs made
// only of comparable fields are compared with ==, which also compares
// fields added to them later.

// equalTrustedCA reports whether two TrustedCA specs are the same.
func equalTrustedCA(a, b *manifest.TrustedCASpec) bool { return fieldsEqual(a, b) }

// equalNetworkList reports whether two NetworkList specs are the same.
func equalNetworkList(a, b *manifest.NetworkListSpec) bool { return fieldsEqual(a, b) }

// appShellEqual compares the fields of an ApplicationSpec but its rules.
var appShellEqual = structEqualExcept(reflect.TypeFor[manifest.ApplicationSpec](), "Rules")

// firewallShellEqual compares the fields of a FirewallSpec but its rules.
var firewallShellEqual = structEqualExcept(reflect.TypeFor[manifest.FirewallSpec](), "Rules")

// equalApplication reports whether two Application specs are the same.
func equalApplication(a, b *manifest.ApplicationSpec) bool {
	if a == b { // the state stores share the specs of unchanged resources
		return true
	}
	if len(a.Rules) != len(b.Rules) || !appShellEqual(reflect.ValueOf(a).Elem(), reflect.ValueOf(b).Elem()) {
		return false
	}
	for i := range a.Rules {
		ra, rb := &a.Rules[i], &b.Rules[i]
		if ra.Name != rb.Name || ra.Phase != rb.Phase || !equalPtr(ra.Active, rb.Active) ||
			!equalCriteria(ra.Criteria, rb.Criteria) || !slices.Equal(ra.Behaviors, rb.Behaviors) {
			return false
		}
	}
	return true
}

// equalFirewall reports whether two Firewall specs are the same.
func equalFirewall(a, b *manifest.FirewallSpec) bool {
	if a == b {
		return true
	}
	if len(a.Rules) != len(b.Rules) || !firewallShellEqual(reflect.ValueOf(a).Elem(), reflect.ValueOf(b).Elem()) {
		return false
	}
	for i := range a.Rules {
		ra, rb := &a.Rules[i], &b.Rules[i]
		if ra.Name != rb.Name || !equalPtr(ra.Active, rb.Active) || !equalCriteria(ra.Criteria, rb.Criteria) ||
			len(ra.Behaviors) != len(rb.Behaviors) {
			return false
		}
		for j := range ra.Behaviors {
			ba, bb := &ra.Behaviors[j], &rb.Behaviors[j]
			if ba.Deny != bb.Deny || ba.Drop != bb.Drop || !equalPtr(ba.SetRateLimit, bb.SetRateLimit) ||
				!equalPtr(ba.SetCustomResponse, bb.SetCustomResponse) {
				return false
			}
		}
	}
	return true
}

// equalCriteria reports whether two criteria (groups of comparisons) are
// the same.
func equalCriteria(a, b [][]manifest.Criterion) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if len(a[i]) != len(b[i]) {
			return false
		}
		for j := range a[i] {
			ca, cb := &a[i][j], &b[i][j]
			if ca.Conditional != cb.Conditional || ca.Variable != cb.Variable || ca.Operator != cb.Operator ||
				!equalPtr(ca.Argument, cb.Argument) {
				return false
			}
		}
	}
	return true
}

// equalPtr reports whether two optional values are both absent or both
// present and equal.
func equalPtr[T comparable](a, b *T) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// listRefs returns the NetworkList names that criteria compare with
// (is_in_list, is_not_in_list): what a compiled Firewall or Application
// depends on besides its own spec.
func listRefs(refs []string, criteria [][]manifest.Criterion) []string {
	for _, g := range criteria {
		for _, c := range g {
			if (c.Operator == "is_in_list" || c.Operator == "is_not_in_list") && c.Argument != nil {
				refs = append(refs, *c.Argument)
			}
		}
	}
	return refs
}
