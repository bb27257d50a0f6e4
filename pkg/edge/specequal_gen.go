package edge

import (
	"reflect"
	"sync"
)

// specComparators caches, per spec type, the comparator fieldsEqual builds.
var specComparators sync.Map // reflect.Type -> valueEqual

type valueEqual func(a, b reflect.Value) bool

// fieldsEqual reports whether *a and *b are equal field by field: strings,
// numbers and booleans by value, pointers by what they point to, slices
// element by element, structs field by field. The comparator of each type
// is built once with reflect, so that a field added to a spec is compared
// without anyone remembering to, at a fraction of reflect.DeepEqual's cost.
func fieldsEqual[T any](a, b *T) bool {
	if a == b {
		return true
	}
	if a == nil || b == nil {
		return false
	}
	va, vb := reflect.ValueOf(a).Elem(), reflect.ValueOf(b).Elem()
	return comparatorOf(va.Type())(va, vb)
}

func comparatorOf(t reflect.Type) valueEqual {
	if f, ok := specComparators.Load(t); ok {
		return f.(valueEqual)
	}
	f := buildComparator(t)
	specComparators.Store(t, f)
	return f
}

func buildComparator(t reflect.Type) valueEqual {
	switch t.Kind() {
	case reflect.String:
		return func(a, b reflect.Value) bool { return a.String() == b.String() }
	case reflect.Bool:
		return func(a, b reflect.Value) bool { return a.Bool() == b.Bool() }
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return func(a, b reflect.Value) bool { return a.Int() == b.Int() }
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return func(a, b reflect.Value) bool { return a.Uint() == b.Uint() }
	case reflect.Pointer:
		var elem valueEqual
		var once sync.Once // recursive types build their element lazily
		return func(a, b reflect.Value) bool {
			if a.IsNil() || b.IsNil() {
				return a.IsNil() == b.IsNil()
			}
			if a.Pointer() == b.Pointer() {
				return true
			}
			once.Do(func() { elem = comparatorOf(t.Elem()) })
			return elem(a.Elem(), b.Elem())
		}
	case reflect.Slice:
		elem := comparatorOf(t.Elem())
		return func(a, b reflect.Value) bool {
			n := a.Len()
			if n != b.Len() {
				return false
			}
			for i := range n {
				if !elem(a.Index(i), b.Index(i)) {
					return false
				}
			}
			return true
		}
	case reflect.Struct:
		return structEqualExcept(t, "")
	}
	// Anything else (maps, interfaces, floats) is compared in full; an
	// unexported field that cannot be read is taken as changed.
	return func(a, b reflect.Value) bool {
		return a.CanInterface() && b.CanInterface() && reflect.DeepEqual(a.Interface(), b.Interface())
	}
}

// structEqualExcept is the comparator of struct type t, leaving out the
// field named skip (compared by its caller).
func structEqualExcept(t reflect.Type, skip string) valueEqual {
	var index []int
	var fields []valueEqual
	for i := range t.NumField() {
		if f := t.Field(i); f.Name != skip {
			index = append(index, i)
			fields = append(fields, comparatorOf(f.Type))
		}
	}
	return func(a, b reflect.Value) bool {
		for k, eq := range fields {
			if !eq(a.Field(index[k]), b.Field(index[k])) {
				return false
			}
		}
		return true
	}
}
