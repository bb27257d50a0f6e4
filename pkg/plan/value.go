package plan

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
)

// The diff works on generic JSON values, so it needs no knowledge of each
// kind's Go type: objects keep the order of their keys (the order of the
// spec's fields), null is treated as absent, and numbers stay exact.
//
// A value is one of: *Object, []any, string, json.Number, bool.

// Object is a JSON object that remembers the order of its keys. It appears
// in Field values that are whole objects.
type Object struct {
	Keys   []string
	Values map[string]any
}

// MarshalJSON writes the object with its keys in order.
func (o *Object) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	if err := writeJSON(&b, o, ""); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// parseValue decodes JSON into a generic value; null (and keys whose value
// is null) become absent (nil).
func parseValue(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	v, err := decodeValue(dec)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("unexpected data after the JSON value")
	}
	return v, nil
}

func decodeValue(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return tok, nil // string, json.Number, bool or nil
	}
	switch d {
	case '{':
		o := &Object{Values: map[string]any{}}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return nil, err
			}
			k, _ := kt.(string)
			v, err := decodeValue(dec)
			if err != nil {
				return nil, err
			}
			if v == nil {
				continue
			}
			if _, dup := o.Values[k]; !dup {
				o.Keys = append(o.Keys, k)
			}
			o.Values[k] = v
		}
		_, err := dec.Token()
		return o, err
	case '[':
		list := []any{}
		for dec.More() {
			v, err := decodeValue(dec)
			if err != nil {
				return nil, err
			}
			list = append(list, v)
		}
		_, err := dec.Token()
		return list, err
	}
	return nil, fmt.Errorf("unexpected %v", d)
}

// writeJSON writes v compactly (indent "") or indented, without escaping
// HTML characters, keeping object key order. Maps from other decoders are
// written with sorted keys.
func writeJSON(b *bytes.Buffer, v any, indent string) error {
	return writeJSONAt(b, v, indent, "")
}

func writeJSONAt(b *bytes.Buffer, v any, indent, prefix string) error {
	nl := func(p string) {
		if indent != "" {
			b.WriteByte('\n')
			b.WriteString(p)
		}
	}
	sep := ":"
	if indent != "" {
		sep = ": "
	}
	switch v := v.(type) {
	case *Object:
		if len(v.Keys) == 0 {
			b.WriteString("{}")
			return nil
		}
		b.WriteByte('{')
		for i, k := range v.Keys {
			if i > 0 {
				b.WriteByte(',')
			}
			nl(prefix + indent)
			writeString(b, k)
			b.WriteString(sep)
			if err := writeJSONAt(b, v.Values[k], indent, prefix+indent); err != nil {
				return err
			}
		}
		nl(prefix)
		b.WriteByte('}')
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		return writeJSONAt(b, &Object{Keys: keys, Values: v}, indent, prefix)
	case []any:
		if len(v) == 0 {
			b.WriteString("[]")
			return nil
		}
		b.WriteByte('[')
		for i, e := range v {
			if i > 0 {
				b.WriteByte(',')
			}
			nl(prefix + indent)
			if err := writeJSONAt(b, e, indent, prefix+indent); err != nil {
				return err
			}
		}
		nl(prefix)
		b.WriteByte(']')
	case string:
		writeString(b, v)
	default:
		data, err := json.Marshal(v)
		if err != nil {
			return err
		}
		b.Write(data)
	}
	return nil
}

func writeString(b *bytes.Buffer, s string) {
	var tmp bytes.Buffer
	enc := json.NewEncoder(&tmp)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	b.Write(bytes.TrimSuffix(tmp.Bytes(), []byte("\n")))
}

// compact returns v as one line of JSON.
func compact(v any) string {
	var b bytes.Buffer
	if err := writeJSON(&b, v, ""); err != nil {
		return fmt.Sprint(v)
	}
	return b.String()
}

// equal reports whether two generic values are the same, ignoring key order.
func equal(a, b any) bool {
	switch a := a.(type) {
	case *Object:
		b, ok := b.(*Object)
		if !ok || len(a.Values) != len(b.Values) {
			return false
		}
		for k, av := range a.Values {
			bv, ok := b.Values[k]
			if !ok || !equal(av, bv) {
				return false
			}
		}
		return true
	case []any:
		b, ok := b.([]any)
		if !ok || len(a) != len(b) {
			return false
		}
		for i := range a {
			if !equal(a[i], b[i]) {
				return false
			}
		}
		return true
	case nil:
		return b == nil
	}
	switch b.(type) {
	case *Object, []any, nil:
		return false
	}
	return a == b
}

// canonical returns a string that is the same for equal values: JSON with
// sorted keys.
func canonical(v any) string {
	var b strings.Builder
	canonicalTo(&b, v)
	return b.String()
}

func canonicalTo(b *strings.Builder, v any) {
	switch v := v.(type) {
	case *Object:
		keys := append([]string(nil), v.Keys...)
		sort.Strings(keys)
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(b, "%q:", k)
			canonicalTo(b, v.Values[k])
		}
		b.WriteByte('}')
	case []any:
		b.WriteByte('[')
		for i, e := range v {
			if i > 0 {
				b.WriteByte(',')
			}
			canonicalTo(b, e)
		}
		b.WriteByte(']')
	case string:
		fmt.Fprintf(b, "%q", v)
	default:
		fmt.Fprintf(b, "%v", v)
	}
}
