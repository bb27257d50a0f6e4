// Package rules is the edge's pure rules engine: criteria, variables,
// header templates, network lists, the firewall and application engines
// and the firewall's rate limiter.
//
// Compilation (CompileNetworkList, CompileFirewall, CompileApplication,
// CompileTemplate) parses every variable reference, regular expression,
// network list and header template once and reports problems as FieldErrors
// positioned by field path, so that edgectl validate runs the same compiler
// as edgectl serve: what validates will serve.
//
// Evaluation (Firewall.Evaluate, Application.EvaluateRequest,
// Application.EvaluateResponse) only reads the compiled values on a request
// view of plain values (Request: method, target, path, query, protocol and a
// HeaderMap, with the facts of its connection and verified client
// certificate in Conn and ClientCert, which the caller formats with pkg/pki):
// variables are resolved by a switch on a precomputed id, never by a string
// lookup, and results are written into caller-owned, reusable values so that
// a request costs almost no allocation.
//
// The package opens no sockets and reads no files. It pulls in, directly or
// through any other package, neither net, crypto/tls nor net/http, nor any
// of the packages that serve (proxy, edge, server, edgetest, cli): values
// in, values out. A test in this package enforces the boundary on the
// package's whole dependency graph.
package rules
