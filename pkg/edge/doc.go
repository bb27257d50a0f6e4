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
// costs almost no allocation. The package opens no sockets and reads no
// files: values in, values out.
package edge
