package state

import (
	"cmp"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/edgectl/edgectl/pkg/manifest"
)

// FormatVersion is the version of the snapshot format this build writes and reads.
const FormatVersion = 1

// Snapshot is the whole deployed state: every resource, normalized, and
// self-contained (certificate and CA PEMs inlined) so that a node can serve
// from it alone. It never holds private-key material.
type Snapshot struct {
	FormatVersion int `json:"formatVersion"`
	// Lineage identifies a state's history; it is set by the first apply and never changes.
	Lineage string `json:"lineage"`
	// Serial increases by one with every apply.
	Serial int64 `json:"serial"`
	// AppliedAt is when the snapshot was written.
	AppliedAt time.Time `json:"appliedAt"`
	// AppliedBy names who wrote it, as user@host; empty in snapshots
	// written before edgectl recorded it.
	AppliedBy string `json:"appliedBy,omitempty"`
	// Changes counts what the apply that wrote it changed; nil in snapshots
	// written before edgectl recorded it.
	Changes *ChangeCounts `json:"changes,omitempty"`
	// RollbackOf is the serial whose resources this snapshot restored
	// (edgectl state rollback); 0 for an apply.
	RollbackOf int64 `json:"rollbackOf,omitempty"`
	// Resources are sorted by kind (dependency order) then name.
	Resources []Resource `json:"resources"`
}

// ChangeCounts counts the resources an apply created, updated and deleted.
type ChangeCounts struct {
	Create int `json:"create"`
	Update int `json:"update"`
	Delete int `json:"delete"`
}

// Resource is one normalized resource. Spec holds a pointer to the typed
// spec of Kind (such as *manifest.DomainSpec) with defaults filled in and
// file references inlined.
type Resource struct {
	Kind   string            `json:"kind"`
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels,omitempty"`
	Spec   any               `json:"spec"`
}

// ID is "Kind/name".
func (r *Resource) ID() string { return r.Kind + "/" + r.Name }

// UnmarshalJSON decodes Spec into the typed spec of Kind.
func (r *Resource) UnmarshalJSON(data []byte) error {
	var raw struct {
		Kind   string            `json:"kind"`
		Name   string            `json:"name"`
		Labels map[string]string `json:"labels,omitempty"`
		Spec   json.RawMessage   `json:"spec"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return err
	}
	spec := manifest.NewSpec(raw.Kind)
	if spec == nil || raw.Kind == manifest.KindTestSuite {
		return fmt.Errorf("resource %s/%s: unknown kind %q", raw.Kind, raw.Name, raw.Kind)
	}
	if err := json.Unmarshal(raw.Spec, spec); err != nil {
		return fmt.Errorf("resource %s/%s: %w", raw.Kind, raw.Name, err)
	}
	r.Kind, r.Name, r.Labels, r.Spec = raw.Kind, raw.Name, raw.Labels, spec
	return nil
}

// Find returns the resource of kind and name, or nil.
func (s *Snapshot) Find(kind, name string) *Resource {
	for i := range s.Resources {
		if r := &s.Resources[i]; r.Kind == kind && r.Name == name {
			return r
		}
	}
	return nil
}

// KindOrder is the position of kind in dependency order (lower first).
func KindOrder(kind string) int {
	for i, k := range manifest.Kinds {
		if k == kind {
			return i
		}
	}
	return len(manifest.Kinds)
}

// Next returns the snapshot that follows prior (nil for an empty store) with
// resources as its content: the same lineage (a new one when prior is nil),
// the serial plus one, and appliedAt set to now in UTC. Resources are sorted
// in dependency order then by name.
func Next(prior *Snapshot, resources []Resource, now time.Time) *Snapshot {
	next := &Snapshot{
		FormatVersion: FormatVersion,
		Lineage:       NewLineage(),
		Serial:        1,
		AppliedAt:     now.UTC(),
		Resources:     append([]Resource{}, resources...),
	}
	if prior != nil {
		next.Lineage = prior.Lineage
		next.Serial = prior.Serial + 1
	}
	SortResources(next.Resources)
	return next
}

// SortResources sorts resources in dependency order (KindOrder), then by name.
func SortResources(rs []Resource) {
	slices.SortStableFunc(rs, func(a, b Resource) int { return CompareResources(&a, &b) })
}

// CompareResources orders two resources as SortResources does: by
// KindOrder, then by name.
func CompareResources(a, b *Resource) int {
	if a.Kind != b.Kind {
		if c := cmp.Compare(KindOrder(a.Kind), KindOrder(b.Kind)); c != 0 {
			return c
		}
	}
	return strings.Compare(a.Name, b.Name)
}

// NewLineage returns a random identifier for a new state history, formatted
// like a version 4 UUID.
func NewLineage() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("state: reading random bytes: %v", err)) // crypto/rand never fails on supported platforms
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// Version is the lineage and serial of s, or "" and 0 for a nil (empty) snapshot.
func (s *Snapshot) Version() (lineage string, serial int64) {
	if s == nil {
		return "", 0
	}
	return s.Lineage, s.Serial
}
