// Package validate checks manifests: each document against the JSON Schema
// of its kind, then the meaning of the whole set (references, names,
// hostnames, PEM material, keys, expiry, rules). Every problem becomes a
// positioned diagnostic, and every document is checked even when others
// have errors, so that a user sees all problems at once.
package validate
