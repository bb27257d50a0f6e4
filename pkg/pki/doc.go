// Package pki parses PEM/DER certificates, keys and CRLs, verifies client
// certificates with OpenSSL-style reasons, and formats certificate fields
// exactly as the mTLS variables require.
//
// The formatting functions feed HTTP headers that origins parse, so their
// output is a contract: every format is golden-tested and documented next to
// the function that produces it. The DN forms are OpenSSL 3's, byte for byte
// (X509_NAME_oneline and X509_NAME_print_ex with XN_FLAG_RFC2253, with
// OpenSSL's whole table of attribute names in oids.go), but for the
// documented header-safety differences; the verify reasons are OpenSSL 3's
// wording, chosen as nginx chooses them. The differential test against
// nginx in pkg/cli is the judge. Values that may carry attacker-chosen bytes
// (a SAN, a CN) are passed through [HeaderSafe] before they are placed in a
// header; the DN forms are printable ASCII already.
//
// [VerifyClient] never falls back to the system roots: a nil or empty root
// pool fails verification.
package pki
