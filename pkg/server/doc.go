// Package server owns sockets: listeners, handshakes, runtime swaps, admin
// endpoints, shutdown. It is the one serving path: edgectl serve, the
// in-process edge of edgectl test and the end-to-end tests all serve
// through it, so they share its TLS handshakes, its HTTP/1.x loop (package
// h1), its HTTP/2 server (package h2), its timeouts and its limits.
//
// A Server serves the current edge.Runtime behind one TLS listener: New
// reads and compiles the store's snapshot, Listen binds the sockets, Serve
// serves until its context is done and then drains. It follows the state
// store through state.Watcher (the file and etcd stores; any other store is
// polled), compiles every new snapshot completely and swaps it in
// atomically; a snapshot that cannot be read or compiled is logged, counted
// and recorded, and the previous runtime keeps serving. Requests finish on
// the runtime they started with. FixedState is the store of an edge that
// serves one snapshot, such as edgectl test's.
//
// The admin listener answers /healthz, /readyz (503 while the served state
// has no Domain, and while shutting down), /metrics (Prometheus) and
// /state; the access log gets one JSON line per request, written off the
// request path.
package server
