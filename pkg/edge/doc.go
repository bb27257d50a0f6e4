// Package edge compiles a deployed snapshot into the immutable runtime that
// serves it, and swaps runtimes when the snapshot changes.
//
// Compile checks every resource with the compilers of package rules
// (network lists, firewalls, applications) and adds what serving needs on
// top: per-domain TLS configurations and trust stores (tls.go), domain
// lookup by SNI and Host, and, per application, an origin client of package
// proxy. Problems come back as a *CompileError naming each resource and
// field.
//
// The request pipeline (Runtime.ServeHTTP) checks that Host agrees with
// SNI, computes the connection's facts once (ConnContext), drops header
// names with '_' (underscore.go), normalises the path under the
// application's policy (rules.NormalizePath), runs the firewall and the
// application's request phase, forwards to the origin through package proxy
// within the application's limits (413, 503 with Retry-After, each named in
// Record.Limit), and runs the response phase on the origin's answer.
// Sockets are accepted by package server and origin connections dialed by
// package proxy: this package dials nothing.
package edge
