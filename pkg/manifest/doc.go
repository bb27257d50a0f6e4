// Package manifest reads edgectl manifests from files, directories and
// standard input into typed resources that remember where every value came
// from (file, line and column). It is one of the three packages that touch
// the outside world: it reads manifest files and nothing else.
package manifest
