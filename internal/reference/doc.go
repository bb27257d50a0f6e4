// Package reference is the manifest language as data: every kind and field
// with its type, description, allowed values, default and example, read
// from the Go doc comments and markers of pkg/manifest by the generator in
// ./generate and embedded here for `edgectl explain`.
//
// The generator also writes the JSON Schemas in schemas/ and the reference
// in docs/reference/ from the same source; `go generate ./...` refreshes
// them all and a test fails when any of them is stale.
package reference

//go:generate go run ./gen -root ../..
