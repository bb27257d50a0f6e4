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
// view (Request, with the facts of its connection and verified client
// certificate in Conn and ClientCert): variables are resolved by a switch on
// a precomputed id, never by a string lookup, and results are written into
// caller-owned, reusable values so that a request costs almost no
// allocation.
//
// The package opens no sockets, reads no files and imports neither net nor
// crypto/tls, nor any of the packages that serve (proxy, edge, server, cli):
// values in, values out. A test in this package enforces the boundary.
package rules
