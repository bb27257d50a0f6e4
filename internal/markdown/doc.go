// Package markdown quotes text for the Markdown that edgectl writes (plans
// and diagnostics for pull-request comments), so that a resource name, a
// field path or a message reads as written, whatever characters it holds.
package markdown
