package plan

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgectl/edgectl/pkg/manifest"
	"github.com/edgectl/edgectl/pkg/state"
)

// FormatVersion is the version of the plan format (saved plan files and the
// -o json output) this build writes and reads.
const FormatVersion = 1

// Action is what apply does to one resource.
type Action string

// Actions.
const (
	Create Action = "create"
	Update Action = "update"
	Delete Action = "delete"
)

// Plan is what apply will do: the changes from the deployed snapshot
// (identified by lineage and serial) to the desired resources. It is data;
// the renderers in this package read it.
type Plan struct {
	// FormatVersion is the plan format, FormatVersion when made by this build.
	FormatVersion int `json:"formatVersion"`
	// Lineage is the deployed state's lineage the plan was made against, "" for an empty store.
	Lineage string `json:"lineage"`
	// PriorSerial is the deployed state's serial the plan was made against, 0 for an empty store.
	PriorSerial int64 `json:"priorSerial"`
	// Changes are in apply order: creates and updates in dependency order
	// (certificates, trusted CAs, network lists, applications, firewalls,
	// domains), then deletes in reverse dependency order. Unchanged
	// resources do not appear.
	Changes []Change `json:"changes"`
	// Summary counts the changes by action.
	Summary Summary `json:"summary"`
	// DestroysDomains names the deployed Domains when the plan leaves no
	// Domain while the deployed state has some (an empty input included):
	// every node would then refuse every handshake. apply refuses such a
	// plan unless --allow-destroy; every renderer shows it as a warning.
	DestroysDomains []string `json:"destroysDomains,omitempty"`
	// Desired is every resource the state holds after apply, in dependency
	// order then by name, so that a saved plan applies exactly what was
	// reviewed. Renderers never show it.
	Desired []state.Resource `json:"desired"`
}

// Change is what happens to one resource.
type Change struct {
	Action Action `json:"action"`
	Kind   string `json:"kind"`
	Name   string `json:"name"`
	// Fields are the changed leaves for an update, every leaf for a create,
	// and nothing for a delete.
	Fields []Field `json:"fields,omitempty"`
}

// ID is "Kind/name".
func (c *Change) ID() string { return c.Kind + "/" + c.Name }

// Field is one changed value of a resource.
type Field struct {
	// Path locates the value in the resource, such as
	// spec.rules[0].behaviors[1].addRequestHeader or metadata.labels.team.
	Path string `json:"path"`
	// Before is the deployed value, nil when the field is added. PEM blobs
	// are replaced by a summary (see SummarizePEM); objects are *Object.
	Before any `json:"before,omitempty"`
	// After is the desired value, nil when the field is removed.
	After any `json:"after,omitempty"`
	// Sensitive marks a value that may be a secret; every renderer masks it.
	Sensitive bool `json:"sensitive,omitempty"`
}

// UnmarshalJSON decodes a field keeping the key order of object values.
func (f *Field) UnmarshalJSON(data []byte) error {
	var raw struct {
		Path      string          `json:"path"`
		Before    json.RawMessage `json:"before"`
		After     json.RawMessage `json:"after"`
		Sensitive bool            `json:"sensitive"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return err
	}
	*f = Field{Path: raw.Path, Sensitive: raw.Sensitive}
	var err error
	if len(raw.Before) > 0 {
		if f.Before, err = parseValue(raw.Before); err != nil {
			return err
		}
	}
	if len(raw.After) > 0 {
		if f.After, err = parseValue(raw.After); err != nil {
			return err
		}
	}
	return nil
}

// Summary counts changes by action.
type Summary struct {
	Create int `json:"create"`
	Update int `json:"update"`
	Delete int `json:"delete"`
}

// Total is the number of changes.
func (s Summary) Total() int { return s.Create + s.Update + s.Delete }

// HasChanges reports whether applying the plan changes anything.
func (p *Plan) HasChanges() bool { return len(p.Changes) > 0 }

// New compares desired with the deployed snapshot prior (nil for an empty
// store) and returns the plan.
func New(prior *state.Snapshot, desired []state.Resource) (*Plan, error) {
	lineage, serial := prior.Version()
	p := &Plan{
		FormatVersion: FormatVersion,
		Lineage:       lineage,
		PriorSerial:   serial,
		Changes:       []Change{},
		Desired:       append([]state.Resource{}, desired...),
	}
	state.SortResources(p.Desired)
	deployed := map[string]*state.Resource{}
	var priorResources []state.Resource
	if prior != nil {
		priorResources = append(priorResources, prior.Resources...)
		state.SortResources(priorResources)
	}
	for i := range priorResources {
		deployed[priorResources[i].ID()] = &priorResources[i]
	}
	seen := make(map[string]bool, len(p.Desired))
	for i := range p.Desired {
		id := p.Desired[i].ID()
		if seen[id] {
			return nil, fmt.Errorf("desired resources name %s twice", id)
		}
		seen[id] = true
	}
	// Each resource is compared on its own, in parallel; results keep the
	// desired (dependency) order.
	results := make([]*Change, len(p.Desired))
	errs := make([]error, len(p.Desired))
	parallel(len(p.Desired), func(i int) {
		d := &p.Desired[i]
		results[i], errs[i] = compare(deployed[d.ID()], d)
	})
	for i, c := range results {
		if errs[i] != nil {
			return nil, errs[i]
		}
		if c != nil {
			p.Changes = append(p.Changes, *c)
		}
	}
	for i := len(priorResources) - 1; i >= 0; i-- {
		r := &priorResources[i]
		if !seen[r.ID()] {
			p.Changes = append(p.Changes, Change{Action: Delete, Kind: r.Kind, Name: r.Name})
		}
	}
	p.Summary = summarize(p.Changes)
	p.DestroysDomains = destroyedDomains(priorResources, p.Desired)
	return p, nil
}

// destroyedDomains returns the names of the deployed Domains when desired
// has no Domain left, else nil.
func destroyedDomains(deployed, desired []state.Resource) []string {
	for i := range desired {
		if desired[i].Kind == manifest.KindDomain {
			return nil
		}
	}
	var names []string
	for i := range deployed {
		if deployed[i].Kind == manifest.KindDomain {
			names = append(names, deployed[i].Name)
		}
	}
	return names
}

// DestroyMessage describes what a plan with DestroysDomains does, for
// every renderer and apply's refusal; "" when it leaves a Domain.
func (p *Plan) DestroyMessage() string {
	if len(p.DestroysDomains) == 0 {
		return ""
	}
	return fmt.Sprintf("this plan deletes every Domain (%s) and leaves none: every edge node will refuse every TLS handshake",
		strings.Join(p.DestroysDomains, ", "))
}

// compare returns the change that turns old (nil when absent) into d, or
// nil when they are the same.
func compare(old, d *state.Resource) (*Change, error) {
	id := d.ID()
	after, err := encodeDoc(d)
	if err != nil {
		return nil, err
	}
	if old == nil {
		av, err := parseValue(after)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", id, err)
		}
		w := &walker{}
		w.leaves("", "", av)
		return &Change{Action: Create, Kind: d.Kind, Name: d.Name, Fields: w.fields}, nil
	}
	before, err := encodeDoc(old)
	if err != nil {
		return nil, err
	}
	if bytes.Equal(before, after) {
		return nil, nil
	}
	fields, err := diffDocs(before, after)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", id, err)
	}
	if len(fields) == 0 {
		return nil, nil
	}
	return &Change{Action: Update, Kind: d.Kind, Name: d.Name, Fields: fields}, nil
}

// parallel calls f(0) ... f(n-1) on GOMAXPROCS goroutines.
func parallel(n int, f func(i int)) {
	workers := min(runtime.GOMAXPROCS(0), n/64+1)
	if workers <= 1 {
		for i := 0; i < n; i++ {
			f(i)
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				f(i)
			}
		}()
	}
	wg.Wait()
}

func summarize(changes []Change) Summary {
	var s Summary
	for _, c := range changes {
		switch c.Action {
		case Create:
			s.Create++
		case Update:
			s.Update++
		case Delete:
			s.Delete++
		}
	}
	return s
}

// diffDocs compares two encoded resource documents.
func diffDocs(before, after []byte) ([]Field, error) {
	bv, err := parseValue(before)
	if err != nil {
		return nil, err
	}
	av, err := parseValue(after)
	if err != nil {
		return nil, err
	}
	w := &walker{}
	w.diff("", "", bv, av)
	return w.fields, nil
}

// doc is what the diff compares: a resource's labels and spec.
type doc struct {
	Metadata *docMetadata `json:"metadata,omitempty"`
	Spec     any          `json:"spec"`
}

type docMetadata struct {
	Labels map[string]string `json:"labels,omitempty"`
}

func encodeDoc(r *state.Resource) ([]byte, error) {
	d := doc{Spec: r.Spec}
	if len(r.Labels) > 0 {
		d.Metadata = &docMetadata{Labels: r.Labels}
	}
	data, err := json.Marshal(d)
	if err != nil {
		return nil, fmt.Errorf("%s: encoding: %w", r.ID(), err)
	}
	return data, nil
}

// Snapshot returns the snapshot that applying the plan writes: the desired
// resources, the plan's lineage (a new one when the plan was made against an
// empty store), the prior serial plus one, and the plan's change counts.
func (p *Plan) Snapshot(now time.Time) *state.Snapshot {
	var prior *state.Snapshot
	if p.Lineage != "" || p.PriorSerial != 0 {
		prior = &state.Snapshot{Lineage: p.Lineage, Serial: p.PriorSerial}
	}
	next := state.Next(prior, p.Desired, now)
	next.Changes = &state.ChangeCounts{Create: p.Summary.Create, Update: p.Summary.Update, Delete: p.Summary.Delete}
	return next
}

// Verify checks that the saved plan p can be applied to the deployed
// snapshot cur: the store's lineage and serial are still those the plan was
// made against (else an error wrapping state.ErrStale), and the plan's
// changes are what its desired resources make of cur (else the file was
// edited).
func (p *Plan) Verify(cur *state.Snapshot) error {
	if err := state.CheckVersion(cur, p.Lineage, p.PriorSerial); err != nil {
		return err
	}
	again, err := New(cur, p.Desired)
	if err != nil {
		return err
	}
	want, err := json.Marshal(again.Changes)
	if err != nil {
		return err
	}
	got, err := json.Marshal(p.Changes)
	if err != nil {
		return err
	}
	if !bytes.Equal(want, got) || again.Summary != p.Summary || !slices.Equal(again.DestroysDomains, p.DestroysDomains) {
		return errors.New("the plan's changes do not match its desired resources (was the file edited?); make a new plan")
	}
	return nil
}

// Marshal returns the saved-plan file content: the whole plan, desired
// resources included, as indented JSON. It may hold sensitive values from
// the manifests (such as credentials in an origin URL), like the state does.
func (p *Plan) Marshal() ([]byte, error) {
	data, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encoding plan: %w", err)
	}
	return append(data, '\n'), nil
}

// Unmarshal reads a saved plan. It refuses, saying why, data that is not a
// plan, a plan of another format version, and the -o json rendering (which
// leaves out the desired resources).
func Unmarshal(data []byte) (*Plan, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, fmt.Errorf("not an edgectl plan: %v", err)
	}
	rawVersion, ok := top["formatVersion"]
	if !ok {
		return nil, errors.New("not an edgectl plan (it has no formatVersion)")
	}
	version, err := strconv.Atoi(string(rawVersion))
	if err != nil {
		return nil, fmt.Errorf("not an edgectl plan (formatVersion is %s)", rawVersion)
	}
	if version != FormatVersion {
		return nil, fmt.Errorf("plan format version %d is not supported: this edgectl reads version %d; make the plan again with this edgectl", version, FormatVersion)
	}
	if _, ok := top["serial"]; ok {
		return nil, errors.New("not an edgectl plan: this is a state file")
	}
	if raw, ok := top["desired"]; !ok || string(raw) == "null" {
		return nil, errors.New("the plan holds no desired resources: it is a rendering (edgectl plan -o json), not a saved plan; save one with edgectl plan --out FILE")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var p Plan
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("not a valid edgectl plan: %v", err)
	}
	if p.Changes == nil {
		p.Changes = []Change{}
	}
	return &p, nil
}
