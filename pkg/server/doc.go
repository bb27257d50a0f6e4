// Package server owns sockets: listeners, runtime swaps, admin endpoints,
// shutdown.
//
// A Server serves the current edge.Runtime behind one TLS listener. It
// watches the state store, compiles every new snapshot completely and swaps
// it in atomically; a snapshot that cannot be read or compiled is logged,
// counted and recorded, and the previous runtime keeps serving. Requests
// finish on the runtime they started with. The admin listener answers
// /healthz, /readyz, /metrics (Prometheus) and /state; the access log gets
// one JSON line per request, written off the request path.
package server
