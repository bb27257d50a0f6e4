// Package diag holds configuration diagnostics: a severity, a source
// position (file, line, column), a field path and a message. Diagnostics are
// collected so that a user sees every problem at once, then sorted and
// printed once.
package diag
