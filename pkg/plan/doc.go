// Package plan compares the desired resources (from the manifests) with the
// deployed snapshot and produces a Plan: data that says what apply will
// create, update and delete, field by field. Renderers for text, JSON and
// Markdown consume the same Plan value, and every one of them masks the
// fields the plan flags as sensitive. The package does no I/O beyond the
// writers it is given.
package plan
