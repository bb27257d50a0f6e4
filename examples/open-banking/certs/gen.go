//go:build ignore

// Command gen (re)generates the DEMO ONLY PKI of the open-banking example:
//
//	go run ./examples/open-banking/certs/gen.go -out examples/open-banking/certs
//
// It reuses the existing files when they are complete, consistent and not
// expiring within a year, unless -force is given. See README.md.
package main

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/edgectl/edgectl/pkg/pki"
	"github.com/edgectl/edgectl/pkg/pki/pkitest"
)

// serverHosts are the names the edge's certificate covers.
var serverHosts = []string{"api.bank.example", "portal.bank.example", "*.partners.bank.example", "localhost", "127.0.0.1"}

// partnerSubject is /C=BR/O=Partner Bank/CN=partner-app.
var partnerSubject = pkix.Name{Country: []string{"BR"}, Organization: []string{"Partner Bank"}, CommonName: "partner-app"}

var (
	expiredFrom = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	expiredTo   = time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC)
)

// minRemaining is how long the valid certificates must still be valid for
// the existing files to be reused.
const minRemaining = 365 * 24 * time.Hour

func main() {
	out := flag.String("out", ".", "directory to write the PEM files to")
	force := flag.Bool("force", false, "regenerate even if the existing files are still good")
	flag.Parse()

	now := time.Now()
	if !*force {
		err := check(*out, now)
		if err == nil {
			fmt.Fprintf(os.Stderr, "demo PKI in %s is up to date (use -force to regenerate)\n", *out)
			return
		}
		fmt.Fprintf(os.Stderr, "regenerating demo PKI in %s: %v\n", *out, err)
	}
	if err := generate(*out, now); err != nil {
		fmt.Fprintf(os.Stderr, "gen: %v\n", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "wrote demo PKI to %s\n", *out)
}

// generate writes a fresh PKI to dir.
func generate(dir string, now time.Time) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	longLived := pkitest.WithValidity(now.Add(-time.Hour).Truncate(time.Second), now.AddDate(25, 0, 0).Truncate(time.Second))

	root := pkitest.NewCA("edgectl demo root CA", longLived)
	partnerCA := pkitest.NewCA("edgectl demo partner CA", longLived)
	// The untrusted CA is thrown away: it is in no bundle, and its key is
	// not written.
	untrustedCA := pkitest.NewCA("edgectl demo untrusted CA", longLived)

	files := []struct {
		name string
		cert *pkitest.Certificate
	}{
		{"root", &root.Certificate},
		{"partner-ca", &partnerCA.Certificate},
		{"server", root.IssueServer(serverHosts, longLived)},
		{"partner", partnerCA.IssueClient("partner-app", pkitest.WithSubject(partnerSubject), longLived)},
		{"untrusted", untrustedCA.IssueClient("untrusted-app", pkitest.WithSubject(pkix.Name{
			Country: []string{"BR"}, Organization: []string{"Unknown Fintech"}, CommonName: "untrusted-app",
		}), longLived)},
		{"expired", partnerCA.IssueClient("expired-app", pkitest.WithSubject(pkix.Name{
			Country: []string{"BR"}, Organization: []string{"Partner Bank"}, CommonName: "expired-app",
		}), pkitest.WithValidity(expiredFrom, expiredTo))},
	}
	for _, f := range files {
		if _, _, err := f.cert.WriteFiles(dir, f.name); err != nil {
			return fmt.Errorf("%s: %w", f.name, err)
		}
	}
	return nil
}

// check returns nil if the files in dir form the expected PKI, valid for at
// least minRemaining (the expired client excepted).
func check(dir string, now time.Time) error {
	load := func(name string) (*x509.Certificate, error) {
		certPEM, err := os.ReadFile(filepath.Join(dir, name+".pem"))
		if err != nil {
			return nil, err
		}
		keyPEM, err := os.ReadFile(filepath.Join(dir, name+"-key.pem"))
		if err != nil {
			return nil, err
		}
		certs, err := pki.ParseCertificates(certPEM)
		if err != nil {
			return nil, fmt.Errorf("%s.pem: %w", name, err)
		}
		key, err := pki.ParsePrivateKey(keyPEM)
		if err != nil {
			return nil, fmt.Errorf("%s-key.pem: %w", name, err)
		}
		if !pki.KeyMatchesCertificate(key, certs[0]) {
			return nil, fmt.Errorf("%s-key.pem does not match %s.pem", name, name)
		}
		return certs[0], nil
	}
	certs := map[string]*x509.Certificate{}
	for _, name := range []string{"root", "partner-ca", "server", "partner", "untrusted", "expired"} {
		c, err := load(name)
		if err != nil {
			return err
		}
		certs[name] = c
	}
	for _, name := range []string{"root", "partner-ca", "server", "partner", "untrusted"} {
		if c := certs[name]; now.Before(c.NotBefore) || c.NotAfter.Sub(now) < minRemaining {
			return fmt.Errorf("%s.pem expires on %s", name, c.NotAfter.Format(time.DateOnly))
		}
	}
	for _, host := range serverHosts {
		if !pki.CoversHostname(certs["server"], host) {
			return fmt.Errorf("server.pem does not cover %s", host)
		}
	}
	signedBy := map[string]string{"server": "root", "partner": "partner-ca", "expired": "partner-ca"}
	for leaf, ca := range signedBy {
		if err := certs[leaf].CheckSignatureFrom(certs[ca]); err != nil {
			return fmt.Errorf("%s.pem is not signed by %s.pem: %w", leaf, ca, err)
		}
	}
	if got := pki.SubjectSlashDN(certs["partner"]); got != "/C=BR/O=Partner Bank/CN=partner-app" {
		return fmt.Errorf("partner.pem has subject %s", got)
	}
	partnerCAs := x509.NewCertPool()
	partnerCAs.AddCert(certs["partner-ca"])
	if verr := pki.VerifyClient([]*x509.Certificate{certs["untrusted"]}, pki.VerifyOptions{Roots: partnerCAs, Now: now}); verr == nil {
		return errors.New("untrusted.pem verifies against partner-ca.pem")
	}
	if !now.After(certs["expired"].NotAfter) {
		return errors.New("expired.pem has not expired")
	}
	return nil
}
