// Package edge compiles deployed resources into the immutable rules engine of
// the edge and evaluates it on the request path.
//
// Compilation (CompileNetworkList, CompileFirewall, CompileApplication,
// CompileTemplate) parses every variable reference, regular expression,
// network list and header template once and reports problems as FieldErrors
// positioned by field path, so that edgectl validate runs the same compiler
// as edgectl serve: what validates will serve.
//
// Evaluation (Firewall.Evaluate, Application.EvaluateRequest,
// Application.EvaluateResponse) only reads the compiled values: variables
// are resolved by a switch on a precomputed id, never by a string lookup, and
// results are written into caller-owned, reusable values so that a request
// costs almost no allocation. The rules engine opens no sockets and reads
// no files: values in, values out.
//
// The Runtime (Compile) adds what serving needs on top: per-domain TLS
// configurations, the request pipeline (Runtime.ServeHTTP) and, per
// application, a pool of persistent HTTP/1.1 connections to the origin
// with a client of its own (origin*.go) that runs each exchange on the
// request's goroutine. Sockets are accepted by package server; the origin
// connections are the one place this package dials.
package edge
