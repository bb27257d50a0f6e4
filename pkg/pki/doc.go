// Package pki parses PEM/DER certificates, keys and CRLs, verifies client
// certificates with OpenSSL-style reasons, and formats certificate fields
// exactly as the mTLS variables require.
//
// The formatting functions feed HTTP headers that origins parse, so their
// output is a contract: every format is golden-tested and documented next to
// the function that produces it. Values that may carry attacker-chosen bytes
// (a DN, a SAN, a CN) are passed through [HeaderSafe] before they are placed
// in a header.
//
// [VerifyClient] never falls back to the system roots: a nil or empty root
// pool fails verification.
package pki
