// Package edgetest runs TestSuite cases against an edge: one real TLS
// client connection per case, with the case's SNI, client certificate and
// TLS versions, then one HTTP/1.1 request. It detects a rejection whether
// it arrives during the handshake or, in TLS 1.3, on the first read, names
// the alert the way RFC 8446 spells it, compares what it observed with the
// case's expectations, and renders the results as text, JSON or JUnit XML.
//
// The edge is either a running one (a target address) or an in-process edge
// compiled from the desired manifests by StartEdge and served by
// pkg/server, exactly as edgectl serve serves, whose applications' origins
// are replaced by a recording origin so that expectations about what the
// origin received can be checked.
package edgetest
