// Package pkitest builds throwaway PKIs in process for tests: root and
// intermediate CAs, server and client leaves, and CRLs, all with ECDSA P-256
// keys, plus the PEM, tls.Certificate and file helpers tests need.
//
// Everything it makes is for tests and demos only. Failures are programming
// errors in the caller, so functions panic rather than return them, as
// net/http/httptest does; only the functions that write files return errors.
//
//	root := pkitest.NewCA("test root")
//	server := root.IssueServer([]string{"api.example", "127.0.0.1"})
//	client := root.IssueClient("partner-app", pkitest.WithURIs("spiffe://example/app"))
//	cfg := &tls.Config{Certificates: []tls.Certificate{server.TLSCertificate()}}
package pkitest
