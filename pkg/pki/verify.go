package pki

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Values of ssl_client_verify besides "FAILED:<reason>".
const (
	// ClientVerifySuccess is ssl_client_verify for a verified certificate.
	ClientVerifySuccess = "SUCCESS"
	// ClientVerifyNone is ssl_client_verify when the client sent no
	// certificate.
	ClientVerifyNone = "NONE"
	// ClientVerifyFailedPrefix starts ssl_client_verify for a certificate
	// that failed verification; the OpenSSL-style reason follows.
	ClientVerifyFailedPrefix = "FAILED:"
)

// Values of the firewall variable ssl_verification_status.
const (
	// StatusSuccess means the client certificate verified.
	StatusSuccess = "SUCCESS"
	// StatusVerificationError means the client certificate failed
	// verification.
	StatusVerificationError = "CERTIFICATE_VERIFICATION_ERROR"
	// StatusMissingCertificate means the client sent no certificate.
	StatusMissingCertificate = "MISSING_CLIENT_CERTIFICATE"
)

// Reasons of a failed verification, in OpenSSL 3's wording
// (X509_verify_cert_error_string) and chosen as nginx chooses them, so that
// origins written for nginx keep working. nginx's verify callback accepts
// every error and $ssl_client_verify reports the last one OpenSSL found;
// edgectl reports the same one.
const (
	// ReasonUnknownCA: the client sent an issuer of its certificate, but
	// no chain from it leads to a trusted CA, or the chain is deeper than
	// the verify depth (alert unknown_ca, bad_certificate for the depth).
	ReasonUnknownCA = "unable to get local issuer certificate"
	// ReasonUnknownLeafIssuer: the client sent its certificate alone and
	// its issuer is not trusted (alert unknown_ca).
	ReasonUnknownLeafIssuer = "unable to verify the first certificate"
	// ReasonSelfSigned: the client's certificate is self-signed and not
	// trusted (alert unknown_ca).
	ReasonSelfSigned = "self-signed certificate"
	// ReasonSelfSignedInChain: the chain the client sent ends in a
	// self-signed CA that is not trusted (alert unknown_ca).
	ReasonSelfSignedInChain = "self-signed certificate in certificate chain"
	// ReasonExpired: a certificate of the chain is past NotAfter (alert
	// certificate_expired).
	ReasonExpired = "certificate has expired"
	// ReasonNotYetValid: a certificate of the chain is before NotBefore
	// (alert bad_certificate).
	ReasonNotYetValid = "certificate is not yet valid"
	// ReasonPurpose: the chain does not allow client authentication (alert
	// bad_certificate). OpenSSL 1.1.1 said "unsupported certificate
	// purpose".
	ReasonPurpose = "unsuitable certificate purpose"
	// ReasonChainTooLong: the client sent more than MaxClientChain
	// certificates (alert bad_certificate). A chain deeper than the verify depth reads as
	// ReasonUnknownCA, as in nginx: OpenSSL stops building the chain there.
	ReasonChainTooLong = "certificate chain too long"
	// ReasonPathLength: a CA's path length constraint is exceeded (alert
	// bad_certificate).
	ReasonPathLength = "path length constraint exceeded"
	// ReasonPermittedSubtree: a name of the chain is outside a CA's
	// permitted name constraints (alert bad_certificate).
	ReasonPermittedSubtree = "permitted subtree violation"
	// ReasonExcludedSubtree: a name of the chain is inside a CA's excluded
	// name constraints (alert bad_certificate).
	ReasonExcludedSubtree = "excluded subtree violation"
	// ReasonRevoked: a CRL revokes a certificate of the chain (alert
	// certificate_revoked).
	ReasonRevoked = "certificate revoked"
	// ReasonCRLExpired: a CRL that applies to the chain is past its next
	// update (alert bad_certificate).
	ReasonCRLExpired = "CRL has expired"
	// ReasonVerifyFailed: any other failure (alert bad_certificate); the Go
	// error says which, in the log.
	ReasonVerifyFailed = "certificate verify failed"

	reasonNoCertificate = "" // see VerifyError.IsMissing
)

// DefaultVerifyDepth is the verification depth used when
// [VerifyOptions.MaxDepth] is zero, as TrustedCA's verifyDepth defaults to:
// up to three intermediate CAs between the client's certificate and the
// trusted CA.
const DefaultVerifyDepth = 3

// MaxClientChain is the most certificates a client may send. Longer chains
// are refused as "certificate chain too long" before any signature is
// checked, which bounds the work a client can cause.
const MaxClientChain = 32

// ErrNoCertificate is the underlying error of a [VerifyError] for a client
// that sent no certificate.
var ErrNoCertificate = errors.New("client sent no certificate")

// Alert is a TLS alert that ends a handshake refused by an Enforce domain.
// Its value is the alert's code on the wire.
type Alert uint8

// The TLS alerts a client verification can end with (RFC 8446, section 6).
const (
	// AlertHandshakeFailure ends a TLS 1.2 handshake without a client
	// certificate.
	AlertHandshakeFailure Alert = 40
	// AlertBadCertificate ends a handshake whose client certificate is
	// otherwise invalid.
	AlertBadCertificate Alert = 42
	// AlertCertificateRevoked ends a handshake whose chain a CRL revokes.
	AlertCertificateRevoked Alert = 44
	// AlertCertificateExpired ends a handshake whose chain has expired.
	AlertCertificateExpired Alert = 45
	// AlertUnknownCA ends a handshake whose chain leads to no trusted CA.
	AlertUnknownCA Alert = 48
	// AlertCertificateRequired ends a TLS 1.3 handshake without a client
	// certificate.
	AlertCertificateRequired Alert = 116
)

// String returns the alert's name as TestSuite expectations spell it, such
// as "unknown_ca", or "alert(N)" for an alert this package does not produce.
func (a Alert) String() string {
	switch a {
	case AlertHandshakeFailure:
		return "handshake_failure"
	case AlertBadCertificate:
		return "bad_certificate"
	case AlertCertificateRevoked:
		return "certificate_revoked"
	case AlertCertificateExpired:
		return "certificate_expired"
	case AlertUnknownCA:
		return "unknown_ca"
	case AlertCertificateRequired:
		return "certificate_required"
	}
	return "alert(" + strconv.Itoa(int(a)) + ")"
}

// Code returns the alert's numeric code on the wire.
func (a Alert) Code() uint8 { return uint8(a) }

// TLSAlert returns the alert as a [tls.AlertError].
func (a Alert) TLSAlert() tls.AlertError { return tls.AlertError(a) }

// AlertForMissing returns the alert that refuses a handshake without a client
// certificate: certificate_required from TLS 1.3 on, handshake_failure
// before (TLS 1.2 has no certificate_required).
func AlertForMissing(tlsVersion uint16) Alert {
	if tlsVersion >= tls.VersionTLS13 {
		return AlertCertificateRequired
	}
	return AlertHandshakeFailure
}

// VerifyError is the outcome of a client verification that did not succeed.
// A client that sent no certificate is represented by [Missing]: its Reason
// is empty and IsMissing reports true. The methods accept a nil receiver,
// which stands for success, so callers can use the result of [VerifyClient]
// directly.
type VerifyError struct {
	// Reason is OpenSSL's wording of the failure, one of the Reason
	// constants, or "" for a missing certificate.
	Reason string
	// Alert is the TLS alert an Enforce domain ends the handshake with.
	Alert Alert
	// Err is the underlying error, for the log; it is never placed in a
	// header.
	Err error
}

// Missing returns the VerifyError of a client that sent no certificate over
// a connection of the given TLS version.
func Missing(tlsVersion uint16) *VerifyError {
	return &VerifyError{Reason: reasonNoCertificate, Alert: AlertForMissing(tlsVersion), Err: ErrNoCertificate}
}

// IsMissing reports whether e stands for a client that sent no certificate.
func (e *VerifyError) IsMissing() bool {
	return e != nil && e.Reason == reasonNoCertificate
}

// SSLClientVerify returns the value of ssl_client_verify: "SUCCESS" for a nil
// e, "NONE" for a missing certificate, else "FAILED:" and the reason.
func (e *VerifyError) SSLClientVerify() string {
	switch {
	case e == nil:
		return ClientVerifySuccess
	case e.IsMissing():
		return ClientVerifyNone
	}
	return ClientVerifyFailedPrefix + e.Reason
}

// Status returns the value of the firewall variable ssl_verification_status.
func (e *VerifyError) Status() string {
	switch {
	case e == nil:
		return StatusSuccess
	case e.IsMissing():
		return StatusMissingCertificate
	}
	return StatusVerificationError
}

// Error describes the failure with the underlying error, for logs.
func (e *VerifyError) Error() string {
	if e.IsMissing() {
		return "client certificate required: " + ErrNoCertificate.Error()
	}
	if e.Err == nil {
		return "client certificate verification failed: " + e.Reason
	}
	return "client certificate verification failed: " + e.Reason + ": " + e.Err.Error()
}

// Unwrap returns the underlying error.
func (e *VerifyError) Unwrap() error { return e.Err }

// VerifyOptions configure [VerifyClient]. A domain compiles them once from
// its TrustedCA and sets Now per handshake.
type VerifyOptions struct {
	// Roots are the trusted CAs. A nil or empty pool fails every
	// verification: the system roots are never used.
	Roots *x509.CertPool
	// Intermediates are the non-root CAs of the TrustedCA bundle; they
	// complete chains whose client did not send them. May be nil.
	Intermediates *x509.CertPool
	// CRLs are checked for every certificate of the verified chain except
	// the root. A CRL applies to a certificate when the certificate's
	// issuer in the chain signed the CRL.
	CRLs []*x509.RevocationList
	// MaxDepth is the most intermediate CA certificates allowed between the
	// leaf and the trusted CA that ends the verified chain: OpenSSL's verify
	// depth, nginx's ssl_verify_depth (1 accepts a leaf issued by an
	// intermediate that a trusted root issued). Zero means
	// DefaultVerifyDepth.
	MaxDepth int
	// Now is the verification time; zero means time.Now().
	Now time.Time
}

// CheckLeaf refuses a client certificate whose own purpose forbids client
// authentication, as OpenSSL's "ssl_client" purpose does: an extended key
// usage without clientAuth (anyExtendedKeyUsage alone does not do, which
// crypto/x509 would accept), or a key usage with neither digitalSignature
// nor keyAgreement. It also refuses a CA certificate presented as a
// client's own, which OpenSSL accepts: a CA's key signs certificates, it
// does not identify a client. The reason is "unsuitable certificate
// purpose".
func CheckLeaf(leaf *x509.Certificate) *VerifyError {
	purpose := func(format string, args ...any) *VerifyError {
		return &VerifyError{Reason: ReasonPurpose, Alert: AlertBadCertificate, Err: fmt.Errorf(format, args...)}
	}
	switch {
	case leaf.BasicConstraintsValid && leaf.IsCA:
		return purpose("client presented CA certificate %s as its own", leaf.Subject)
	case (len(leaf.ExtKeyUsage) > 0 || len(leaf.UnknownExtKeyUsage) > 0) && !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageClientAuth):
		return purpose("client certificate %s has no clientAuth extended key usage", leaf.Subject)
	case leaf.KeyUsage != 0 && leaf.KeyUsage&(x509.KeyUsageDigitalSignature|x509.KeyUsageKeyAgreement) == 0:
		return purpose("client certificate %s allows neither digitalSignature nor keyAgreement", leaf.Subject)
	}
	return nil
}

// VerifyClient verifies the certificate chain a client sent, chain[0] being
// the leaf and the rest intermediates, for client authentication (EKU
// clientAuth), depth, validity, revocation and name constraints. It returns
// nil on success. An empty chain yields Missing(tls.VersionTLS13); callers
// that know the negotiated version should call [Missing] themselves
// instead.
//
// When several checks fail, the reason is the one nginx reports: the last
// error OpenSSL meets, whose checks run in this order: building the chain
// (unknown issuer, self-signed, depth), purposes, revocation, validity
// periods (and "unable to verify the first certificate"), name
// constraints.
func VerifyClient(chain []*x509.Certificate, opts VerifyOptions) *VerifyError {
	if len(chain) == 0 {
		return Missing(tls.VersionTLS13)
	}
	if len(chain) > MaxClientChain {
		return &VerifyError{Reason: ReasonChainTooLong, Alert: AlertBadCertificate,
			Err: fmt.Errorf("client sent %d certificates, more than %d", len(chain), MaxClientChain)}
	}
	if opts.Roots == nil || opts.Roots.Equal(x509.NewCertPool()) {
		return &VerifyError{Reason: ReasonUnknownCA, Alert: AlertUnknownCA,
			Err: errors.New("no trusted CA certificates configured")}
	}
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	maxDepth := opts.MaxDepth
	if maxDepth <= 0 {
		maxDepth = DefaultVerifyDepth
	}

	var inter *x509.CertPool
	if opts.Intermediates != nil {
		inter = opts.Intermediates.Clone()
	} else {
		inter = x509.NewCertPool()
	}
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	vopts := x509.VerifyOptions{
		Roots:         opts.Roots,
		Intermediates: inter,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	leafErr := CheckLeaf(chain[0])
	chains, err := chain[0].Verify(vopts)
	if err != nil {
		verr := classify(err, chain, now)
		switch verr.Reason {
		case ReasonExpired, ReasonNotYetValid:
			if nc := constraintsAfterValidity(chain, vopts, err); nc != nil {
				return nc
			}
		case ReasonUnknownCA, ReasonSelfSigned, ReasonSelfSignedInChain:
			// Purposes are checked after the chain is built.
			if leafErr != nil {
				return leafErr
			}
		case ReasonPurpose:
			// Revocation is checked after purposes: find the chains
			// without the usage constraint and look at their CRLs.
			if leafErr == nil {
				leafErr = verr
			}
			vopts.KeyUsages = []x509.ExtKeyUsage{x509.ExtKeyUsageAny}
			if any, err2 := chain[0].Verify(vopts); err2 == nil {
				if rev := revocationOf(any, opts.CRLs, now, maxDepth); rev != nil {
					return rev
				}
			}
			return leafErr
		}
		return verr
	}

	slices.SortStableFunc(chains, func(a, b []*x509.Certificate) int { return len(a) - len(b) })
	// Revocation comes after purposes, which come after the depth.
	if rev := revocationOf(chains, opts.CRLs, now, maxDepth); rev != nil {
		return rev
	}
	if leafErr != nil {
		return leafErr
	}
	return CheckDepth(chains[0], maxDepth)
}

// revocationOf checks the CRLs of chains (sorted shortest first) within
// maxDepth: nil if one passes (no CRL revokes a certificate of it and every
// CRL that applies is current), else the failure of the shortest.
func revocationOf(chains [][]*x509.Certificate, crls []*x509.RevocationList, now time.Time, maxDepth int) *VerifyError {
	slices.SortStableFunc(chains, func(a, b []*x509.Certificate) int { return len(a) - len(b) })
	var first *VerifyError
	for _, c := range chains {
		if CheckDepth(c, maxDepth) != nil {
			break
		}
		verr := checkRevocation(c, crls, now)
		if verr == nil {
			return nil
		}
		if first == nil {
			first = verr
		}
	}
	return first
}

// constraintsAfterValidity returns the name-constraint violation of a chain
// that failed on a validity period, or nil. OpenSSL checks name constraints
// after validity periods, so nginx reports the violation: look again at a
// time every certificate the client sent is valid.
func constraintsAfterValidity(chain []*x509.Certificate, vopts x509.VerifyOptions, err error) *VerifyError {
	lo, hi := chain[0].NotBefore, chain[0].NotAfter
	for _, c := range chain[1:] {
		if c.NotBefore.After(lo) {
			lo = c.NotBefore
		}
		if c.NotAfter.Before(hi) {
			hi = c.NotAfter
		}
	}
	if !lo.Before(hi) {
		return nil
	}
	vopts.CurrentTime = lo.Add(hi.Sub(lo) / 2)
	_, err2 := chain[0].Verify(vopts)
	if err2 == nil {
		return nil
	}
	if nc := classify(err2, chain, vopts.CurrentTime); nc.Reason == ReasonPermittedSubtree || nc.Reason == ReasonExcludedSubtree {
		nc.Err = fmt.Errorf("%w (and %w)", err2, err)
		return nc
	}
	return nil
}

// CheckDepth refuses a verified chain (leaf first, trusted CA last) with more
// than maxDepth intermediate CAs, as OpenSSL's verify depth does. The reason
// is nginx's: OpenSSL stops building the chain at the depth and reports
// the issuer it did not look for as unknown.
func CheckDepth(chain []*x509.Certificate, maxDepth int) *VerifyError {
	if n := len(chain) - 2; n > maxDepth {
		return &VerifyError{Reason: ReasonUnknownCA, Alert: AlertBadCertificate,
			Err: fmt.Errorf("chain has %d intermediate CAs, more than the verify depth %d", n, maxDepth)}
	}
	return nil
}

// checkRevocation checks every certificate of a verified chain but the root
// against the CRLs its issuer signed, in chain order from the leaf, as
// OpenSSL does: an applicable CRL past NextUpdate fails before its entries
// are looked at.
func checkRevocation(chain []*x509.Certificate, crls []*x509.RevocationList, now time.Time) *VerifyError {
	if len(crls) == 0 {
		return nil
	}
	for i := 0; i < len(chain)-1; i++ {
		cert, issuer := chain[i], chain[i+1]
		for _, crl := range crls {
			if !bytes.Equal(crl.RawIssuer, issuer.RawSubject) || crl.CheckSignatureFrom(issuer) != nil {
				continue
			}
			if !crl.NextUpdate.IsZero() && now.After(crl.NextUpdate) {
				return &VerifyError{Reason: ReasonCRLExpired, Alert: AlertBadCertificate,
					Err: fmt.Errorf("CRL of %q passed its next update %s", issuer.Subject, crl.NextUpdate.UTC().Format(time.RFC3339))}
			}
			for _, entry := range crl.RevokedCertificateEntries {
				if entry.SerialNumber != nil && entry.SerialNumber.Cmp(cert.SerialNumber) == 0 {
					return &VerifyError{Reason: ReasonRevoked, Alert: AlertCertificateRevoked,
						Err: fmt.Errorf("certificate %q (serial %s) revoked at %s", cert.Subject, SerialHex(cert), entry.RevocationTime.UTC().Format(time.RFC3339))}
				}
			}
		}
	}
	return nil
}

// classify maps an error of x509.Certificate.Verify to a VerifyError.
func classify(err error, chain []*x509.Certificate, now time.Time) *VerifyError {
	if invalid, ok := errors.AsType[x509.CertificateInvalidError](err); ok {
		switch invalid.Reason {
		case x509.Expired:
			return validityError(invalid.Cert, now, err)
		case x509.IncompatibleUsage:
			return &VerifyError{Reason: ReasonPurpose, Alert: AlertBadCertificate, Err: err}
		case x509.TooManyIntermediates:
			return &VerifyError{Reason: ReasonPathLength, Alert: AlertBadCertificate, Err: err}
		case x509.CANotAuthorizedForThisName:
			if strings.Contains(invalid.Detail, "excluded") {
				return &VerifyError{Reason: ReasonExcludedSubtree, Alert: AlertBadCertificate, Err: err}
			}
			return &VerifyError{Reason: ReasonPermittedSubtree, Alert: AlertBadCertificate, Err: err}
		}
		return &VerifyError{Reason: ReasonVerifyFailed, Alert: AlertBadCertificate, Err: err}
	}
	if _, ok := errors.AsType[x509.UnknownAuthorityError](err); ok {
		// crypto/x509 skips a candidate issuer it cannot use and reports an
		// unknown authority. OpenSSL, which builds the chain from what the
		// client sent, reports why the sent issuer is unusable: do the same
		// when an intermediate the client sent did sign the certificate
		// before it but is outside its validity period or is not a CA.
		for i := 1; i < len(chain); i++ {
			c, child := chain[i], chain[i-1]
			if c.CheckSignature(child.SignatureAlgorithm, child.RawTBSCertificate, child.Signature) != nil {
				continue
			}
			if now.Before(c.NotBefore) || now.After(c.NotAfter) {
				return validityError(c, now, err)
			}
			if !c.BasicConstraintsValid {
				return &VerifyError{Reason: ReasonVerifyFailed, Alert: AlertBadCertificate, Err: err}
			}
			if !c.IsCA {
				// OpenSSL checks the issuer's purpose: it must be a CA.
				return &VerifyError{Reason: ReasonPurpose, Alert: AlertBadCertificate, Err: err}
			}
		}
		return &VerifyError{Reason: unknownIssuerReason(chain), Alert: AlertUnknownCA, Err: err}
	}
	return &VerifyError{Reason: ReasonVerifyFailed, Alert: AlertBadCertificate, Err: err}
}

// unknownIssuerReason names, as OpenSSL does, why the chain a client sent
// leads to no trusted CA. Following the issuers among the certificates the
// client sent from its leaf: a self-signed leaf is "self-signed
// certificate"; a chain that ends in another self-signed certificate is
// "self-signed certificate in certificate chain"; a leaf whose issuer the
// client did not send is "unable to verify the first certificate" (the
// last error nginx's callback sees); otherwise the issuer of the last
// certificate found is unknown.
func unknownIssuerReason(sent []*x509.Certificate) string {
	cur, n := sent[0], 1
	used := make([]bool, len(sent))
	used[0] = true
	for {
		if selfSigned(cur) {
			if n == 1 {
				return ReasonSelfSigned
			}
			return ReasonSelfSignedInChain
		}
		next := -1
		for i, c := range sent {
			if !used[i] && bytes.Equal(c.RawSubject, cur.RawIssuer) && cur.CheckSignatureFrom(c) == nil {
				next = i
				break
			}
		}
		if next < 0 {
			break
		}
		used[next] = true
		cur, n = sent[next], n+1
	}
	if n == 1 {
		return ReasonUnknownLeafIssuer
	}
	return ReasonUnknownCA
}

// selfSigned reports whether c's issuer is its subject and its own key
// signed it.
func selfSigned(c *x509.Certificate) bool {
	return bytes.Equal(c.RawIssuer, c.RawSubject) &&
		c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature) == nil
}

func validityError(cert *x509.Certificate, now time.Time, err error) *VerifyError {
	if cert != nil && now.Before(cert.NotBefore) {
		return &VerifyError{Reason: ReasonNotYetValid, Alert: AlertBadCertificate, Err: err}
	}
	return &VerifyError{Reason: ReasonExpired, Alert: AlertCertificateExpired, Err: err}
}
