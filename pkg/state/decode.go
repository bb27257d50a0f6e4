package state

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"sync"

	"github.com/edgectl/edgectl/pkg/manifest"
)

// A state file of 10,000 domains is 15 to 30 MB of JSON, and a server reads
// it again on every change. It is decoded in one pass over its bytes:
//
//  1. a scan finds the top-level members and, inside the resources array,
//     where each resource starts and ends, without decoding anything;
//  2. the members other than the resources (formatVersion, lineage,
//     serial, ...) are decoded as a small object with the strict rules
//     (strictDecode): unknown fields refused, format version and lineage
//     checked;
//  3. each resource is decoded once, straight into the typed spec of its
//     kind, on every CPU; a resource whose bytes are those of a resource of
//     the previous snapshot read by the same store is not decoded again:
//     the previous one is reused.
//
// With a previous snapshot, the scan of step 1 is shorter still: the
// resources at the start and at the end of the array whose bytes (and
// everything before, respectively after, them) are those of the previous
// snapshot are taken as they are, and only the part between is scanned.
//
// Any file the fast path does not fully understand (not JSON, not an
// object, a resource with unusual keys, any decode error) is decoded again
// by strictDecode, the reference decoding, which gives the errors their
// words. The fast path accepts nothing strictDecode refuses and decodes
// everything it accepts to the same snapshot; TestDecodeMatchesStrict and
// FuzzDecodeSnapshot hold it to that.

// decoded is what decodeSnapshot keeps of a snapshot to decode the next one
// faster: the raw bytes of each resource (slices of the data it was read
// from) next to the resource they decoded to.
type decoded struct {
	data      []byte
	arrStart  int   // where the resources array starts in data ('['); -1 without one
	starts    []int // where each resource starts in data
	raws      [][]byte
	resources []Resource
	byKey     map[string]int // resource key (its kind and name bytes) → index; built on first use
	keyOnce   sync.Once
}

// reuseDecoder decodes the snapshots a store reads, each reusing the
// resources of the one before whose bytes did not change. The snapshots it
// returns share those resources' specs and labels: they are read-only.
type reuseDecoder struct {
	mu   sync.Mutex
	last *decoded // what the last decode decoded; nil after a failure
}

// decode decodes data as DecodeSnapshot does.
func (r *reuseDecoder) decode(data []byte) (*Snapshot, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, d, err := decodeSnapshot(data, r.last)
	r.last = d
	return s, err
}

// DecodeSnapshot parses a state file's content. It says plainly when the
// data is not JSON, not an edgectl state, or of a format version this build
// does not read.
func DecodeSnapshot(data []byte) (*Snapshot, error) {
	s, _, err := decodeSnapshot(data, nil)
	return s, err
}

// decodeSnapshot decodes data, reusing the resources of prev (nil for none)
// whose bytes did not change. The decoded it returns (nil when the fast
// path did not apply) serves the next call; it shares data.
func decodeSnapshot(data []byte, prev *decoded) (*Snapshot, *decoded, error) {
	if s, d, ok := fastDecode(data, prev); ok {
		return s, d, nil
	}
	s, err := strictDecode(data)
	return s, nil, err
}

// strictDecode is the reference decoding of a state file, with the errors
// a person reads. It goes over the data several times; fastDecode falls
// back to it.
func strictDecode(data []byte) (*Snapshot, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, errors.New("the file is empty")
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		var syn *json.SyntaxError
		var typ *json.UnmarshalTypeError
		switch {
		case errors.As(err, &syn):
			return nil, fmt.Errorf("not valid JSON (offset %d: %v)", syn.Offset, syn)
		case errors.As(err, &typ):
			return nil, errors.New("not an edgectl state (a state is a JSON object)")
		}
		return nil, fmt.Errorf("not valid JSON: %v", err)
	}
	rawVersion, ok := top["formatVersion"]
	if !ok {
		return nil, errors.New("not an edgectl state (it has no formatVersion)")
	}
	version, err := strconv.Atoi(string(rawVersion))
	if err != nil {
		return nil, fmt.Errorf("not an edgectl state (formatVersion is %s)", rawVersion)
	}
	switch {
	case version > FormatVersion:
		return nil, fmt.Errorf("written by a newer edgectl (format version %d; this build reads version %d): upgrade edgectl", version, FormatVersion)
	case version != FormatVersion:
		return nil, fmt.Errorf("unknown format version %d (this build reads version %d)", version, FormatVersion)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var s Snapshot
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("not a valid edgectl state: %v", err)
	}
	if s.Lineage == "" || s.Serial < 1 {
		return nil, errors.New("not a valid edgectl state (no lineage or serial)")
	}
	return &s, nil
}

var resourcesKey = []byte(`"resources"`)

// fastDecode decodes data in one pass (see the comment at the top of this
// file); ok is false when strictDecode must decide.
func fastDecode(data []byte, prev *decoded) (s *Snapshot, d *decoded, ok bool) {
	// 1. The top-level members; the resources array is split, not decoded.
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '{' {
		return nil, nil, false
	}
	header := make([]byte, 0, 512)
	header = append(header, '{')
	var raws [][]byte
	var starts, known []int
	arrStart := -1
	haveResources := false
	i = skipSpace(data, i+1)
	if i < len(data) && data[i] == '}' {
		i++
	} else {
		for {
			if i >= len(data) || data[i] != '"' {
				return nil, nil, false
			}
			kend := skipString(data, i)
			if kend < 0 {
				return nil, nil, false
			}
			key := data[i:kend]
			i = skipSpace(data, kend)
			if i >= len(data) || data[i] != ':' {
				return nil, nil, false
			}
			i = skipSpace(data, i+1)
			if i >= len(data) {
				return nil, nil, false
			}
			if bytes.Equal(key, resourcesKey) && data[i] == '[' {
				if haveResources {
					return nil, nil, false // a repeated member: strictDecode's rules decide
				}
				haveResources = true
				var end int
				if raws, starts, known, end = splitArray(data, i, prev); end < 0 {
					return nil, nil, false
				}
				arrStart, i = i, end
			} else {
				if bytes.IndexByte(key, '\\') >= 0 || bytes.EqualFold(key, resourcesKey) {
					// json matches field names without regard to case:
					// this member would be the resources, too.
					return nil, nil, false
				}
				vend := skipValue(data, i)
				if vend < 0 {
					return nil, nil, false
				}
				if len(header) > 1 {
					header = append(header, ',')
				}
				header = append(header, key...)
				header = append(header, ':')
				header = append(header, data[i:vend]...)
				i = vend
			}
			i = skipSpace(data, i)
			if i >= len(data) {
				return nil, nil, false
			}
			if data[i] == '}' {
				i++
				break
			}
			if data[i] != ',' {
				return nil, nil, false
			}
			i = skipSpace(data, i+1)
		}
	}
	if skipSpace(data, i) != len(data) {
		return nil, nil, false // something after the object
	}
	header = append(header, '}')

	// 2. Everything but the resources, with the strict rules.
	snap, err := strictDecode(header)
	if err != nil || snap.Resources != nil {
		return nil, nil, false
	}
	if !haveResources {
		return snap, &decoded{arrStart: -1}, true
	}

	// 3. The resources, each decoded once or reused.
	resources := make([]Resource, len(raws))
	var todo []int
	for n, raw := range raws {
		if j := known[n]; j >= 0 {
			resources[n] = prev.resources[j]
		} else if j := prev.find(n, raw); j >= 0 {
			resources[n] = prev.resources[j]
		} else {
			todo = append(todo, n)
		}
	}
	if !decodeResources(raws, resources, todo) {
		return nil, nil, false
	}
	snap.Resources = resources
	return snap, &decoded{data: data, arrStart: arrStart, starts: starts, raws: raws, resources: resources}, true
}

// find returns the index of the previous resource whose bytes are raw
// (whose position was n in this snapshot), or -1.
func (d *decoded) find(n int, raw []byte) int {
	if d == nil || len(d.raws) == 0 {
		return -1
	}
	if n < len(d.raws) && bytes.Equal(d.raws[n], raw) {
		return n
	}
	k, ok := resourceKey(raw)
	if !ok {
		return -1
	}
	if n < len(d.raws) {
		if pk, ok := resourceKey(d.raws[n]); ok && pk == k {
			return -1 // the same resource, changed
		}
	}
	// A resource added or removed before this one shifts the rest: look
	// it up by kind and name.
	d.keyOnce.Do(func() {
		d.byKey = make(map[string]int, len(d.raws))
		for j, r := range d.raws {
			if k, ok := resourceKey(r); ok {
				d.byKey[k] = j
			}
		}
	})
	if j, ok := d.byKey[k]; ok && bytes.Equal(d.raws[j], raw) {
		return j
	}
	return -1
}

// resourceKey is the raw kind and name members of a resource's bytes.
func resourceKey(raw []byte) (string, bool) {
	f, _, ok := splitResource(raw, 0)
	if !ok {
		return "", false
	}
	return string(f.kind) + "\x00" + string(f.name), true
}

// decodeResources decodes the resources raws[n] for n in todo into
// resources[n], the work shared among the CPUs; false when one fails.
func decodeResources(raws [][]byte, resources []Resource, todo []int) bool {
	workers := min(runtime.GOMAXPROCS(0), len(todo)/64+1)
	if workers == 1 {
		for _, n := range todo {
			if decodeResource(raws[n], &resources[n]) != nil {
				return false
			}
		}
		return true
	}
	var failed sync.Once
	ok := true
	var wg sync.WaitGroup
	for w := range workers {
		part := todo[len(todo)*w/workers : len(todo)*(w+1)/workers]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, n := range part {
				if err := decodeResource(raws[n], &resources[n]); err != nil {
					failed.Do(func() { ok = false })
					return
				}
			}
		}()
	}
	wg.Wait()
	return ok
}

// decodeResource decodes one resource's bytes in one pass into r. A
// resource with members other than kind, name, labels and spec once each
// goes through Resource.UnmarshalJSON, which decides what they mean.
func decodeResource(raw []byte, r *Resource) error {
	f, end, ok := splitResource(raw, 0)
	if !ok || end != len(raw) || f.kind == nil || f.name == nil || f.spec == nil {
		return r.UnmarshalJSON(raw)
	}
	kind, err := jsonString(f.kind)
	if err != nil {
		return err
	}
	name, err := jsonString(f.name)
	if err != nil {
		return err
	}
	var labels map[string]string
	if f.labels != nil {
		if err := json.Unmarshal(f.labels, &labels); err != nil {
			return err
		}
	}
	spec := manifest.NewSpec(kind)
	if spec == nil || kind == manifest.KindTestSuite {
		return fmt.Errorf("resource %s/%s: unknown kind %q", kind, name, kind)
	}
	if err := json.Unmarshal(f.spec, spec); err != nil {
		return fmt.Errorf("resource %s/%s: %w", kind, name, err)
	}
	r.Kind, r.Name, r.Labels, r.Spec = kind, name, labels, spec
	return nil
}

// resourceFields are the raw values of a resource's members (nil when absent).
type resourceFields struct {
	kind, name, labels, spec []byte
}

var (
	kindKey   = []byte(`"kind"`)
	nameKey   = []byte(`"name"`)
	labelsKey = []byte(`"labels"`)
	specKey   = []byte(`"spec"`)
)

// splitResource splits the resource object at data[i:] into its members,
// returning where it ends. ok is false for anything but an object whose
// members are kind, name, labels and spec, each at most once, written
// plainly.
func splitResource(data []byte, i int) (f resourceFields, end int, ok bool) {
	if i >= len(data) || data[i] != '{' {
		return f, -1, false
	}
	i = skipSpace(data, i+1)
	if i < len(data) && data[i] == '}' {
		return f, i + 1, true
	}
	for {
		if i >= len(data) || data[i] != '"' {
			return f, -1, false
		}
		kend := skipString(data, i)
		if kend < 0 {
			return f, -1, false
		}
		key := data[i:kend]
		i = skipSpace(data, kend)
		if i >= len(data) || data[i] != ':' {
			return f, -1, false
		}
		i = skipSpace(data, i+1)
		vend := skipValue(data, i)
		if vend < 0 {
			return f, -1, false
		}
		var slot *[]byte
		switch {
		case bytes.Equal(key, kindKey):
			slot = &f.kind
		case bytes.Equal(key, nameKey):
			slot = &f.name
		case bytes.Equal(key, labelsKey):
			slot = &f.labels
		case bytes.Equal(key, specKey):
			slot = &f.spec
		default:
			return f, -1, false
		}
		if *slot != nil {
			return f, -1, false
		}
		*slot = data[i:vend]
		i = skipSpace(data, vend)
		if i >= len(data) {
			return f, -1, false
		}
		if data[i] == '}' {
			return f, i + 1, true
		}
		if data[i] != ',' {
			return f, -1, false
		}
		i = skipSpace(data, i+1)
	}
}

// jsonString decodes a JSON string value (or null, as ""). The common
// case, printable ASCII without escapes, is a plain copy.
func jsonString(raw []byte) (string, error) {
	if len(raw) >= 2 && raw[0] == '"' && raw[len(raw)-1] == '"' {
		plain := true
		for _, c := range raw[1 : len(raw)-1] {
			if c < 0x20 || c >= 0x7f || c == '\\' || c == '"' {
				plain = false
				break
			}
		}
		if plain {
			return string(raw[1 : len(raw)-1]), nil
		}
	}
	var s string
	err := json.Unmarshal(raw, &s)
	return s, err
}

// splitArray returns the raw elements of the array at data[i], where each
// starts, and where the array ends (-1 when it is malformed). known[n] is
// the index of the element of prev (nil for none) that element n is known
// to equal, or -1: the elements in the part of the array that starts as
// prev's array does, or in the part of data that ends as prev's data does,
// are taken from prev without a scan.
func splitArray(data []byte, i int, prev *decoded) (elems [][]byte, starts, known []int, end int) {
	elems = [][]byte{}
	arr := i
	var sufStart, shift int = len(data) + 1, 0
	if prev != nil && prev.arrStart >= 0 && len(prev.starts) > 0 {
		// The elements that lie in the common start of the two arrays.
		common := commonPrefix(data[arr:], prev.data[prev.arrStart:])
		for j, s := range prev.starts {
			rel := s + len(prev.raws[j]) - prev.arrStart
			if rel > common {
				break
			}
			elems = append(elems, data[arr+s-prev.arrStart:arr+rel])
			starts = append(starts, arr+s-prev.arrStart)
			known = append(known, j)
			i = arr + rel
		}
		sufStart = len(data) - commonSuffix(data, prev.data)
		shift = len(data) - len(prev.data)
	}
	if len(elems) == 0 {
		i = skipSpace(data, i+1)
		if i < len(data) && data[i] == ']' {
			return elems, starts, known, i + 1
		}
	} else if i = skipSpace(data, i); i < len(data) && data[i] == ']' {
		return elems, starts, known, i + 1
	} else if i < len(data) && data[i] == ',' {
		i = skipSpace(data, i+1)
	} else {
		return nil, nil, nil, -1
	}
	for {
		if i >= sufStart {
			// From here to its end, data is prev's data from i-shift:
			// if an element of prev starts there, the rest of the array
			// is prev's.
			if j, ok := slices.BinarySearch(prev.starts, i-shift); ok && i-shift > prev.arrStart {
				for ; j < len(prev.starts); j++ {
					s := prev.starts[j] + shift
					elems = append(elems, data[s:s+len(prev.raws[j])])
					starts = append(starts, s)
					known = append(known, j)
				}
				i = starts[len(starts)-1] + len(elems[len(elems)-1])
				sufStart = len(data) + 1 // the array's end is scanned as usual
				goto next
			}
		}
		if end = skipValue(data, i); end < 0 {
			return nil, nil, nil, -1
		}
		elems = append(elems, data[i:end])
		starts = append(starts, i)
		known = append(known, -1)
		i = end
	next:
		i = skipSpace(data, i)
		if i >= len(data) {
			return nil, nil, nil, -1
		}
		if data[i] == ']' {
			return elems, starts, known, i + 1
		}
		if data[i] != ',' {
			return nil, nil, nil, -1
		}
		i = skipSpace(data, i+1)
	}
}

// commonPrefix is the length of the longest common prefix of a and b.
func commonPrefix(a, b []byte) int {
	n := min(len(a), len(b))
	const chunk = 4096
	i := 0
	for i+chunk <= n && bytes.Equal(a[i:i+chunk], b[i:i+chunk]) {
		i += chunk
	}
	for i < n && a[i] == b[i] {
		i++
	}
	return i
}

// commonSuffix is the length of the longest common suffix of a and b.
func commonSuffix(a, b []byte) int {
	n := min(len(a), len(b))
	const chunk = 4096
	i := 0
	for i+chunk <= n && bytes.Equal(a[len(a)-i-chunk:len(a)-i], b[len(b)-i-chunk:len(b)-i]) {
		i += chunk
	}
	for i < n && a[len(a)-i-1] == b[len(b)-i-1] {
		i++
	}
	return i
}

// skipSpace returns the index of the first byte at or after i that is not
// JSON white space.
func skipSpace(data []byte, i int) int {
	for i < len(data) {
		switch data[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// skipString returns the index after the string that starts at data[i]
// (a quote), or -1 when it does not end. It does not check what is inside:
// whatever is kept of it is decoded by encoding/json, or equal to bytes
// that were.
func skipString(data []byte, i int) int {
	i++
	for {
		q := bytes.IndexByte(data[i:], '"')
		if q < 0 {
			return -1
		}
		i += q
		bs := 0
		for j := i - 1; j >= 0 && data[j] == '\\'; j-- {
			bs++
		}
		i++
		if bs%2 == 0 {
			return i
		}
	}
}

// structural marks the bytes skipValue stops at inside an object or array.
var structural = [256]bool{'"': true, '{': true, '[': true, '}': true, ']': true}

// skipValue returns the index after the JSON value that starts at data[i],
// or -1 when its brackets do not balance. Like skipString, it finds the
// value's end without checking what is inside.
func skipValue(data []byte, i int) int {
	if i >= len(data) {
		return -1
	}
	switch data[i] {
	case '"':
		return skipString(data, i)
	case '{', '[':
		depth := 0
		for i < len(data) {
			if !structural[data[i]] {
				i++
				continue
			}
			switch data[i] {
			case '"':
				if i = skipString(data, i); i < 0 {
					return -1
				}
				continue
			case '{', '[':
				depth++
			default: // '}', ']'
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return -1
	case '}', ']', ',', ':':
		return -1
	}
	for j := i; j < len(data); j++ {
		switch data[j] {
		case ',', '}', ']', ':', ' ', '\t', '\n', '\r', '"', '{', '[':
			return j
		}
	}
	return len(data)
}
