package validate

import (
	"crypto/x509"
	"encoding/pem"
	"strings"
)

func encodePEM(typ string, der []byte) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
}

// encodeCerts re-encodes parsed certificates, dropping comments and other
// text around the PEM blocks so that stored material is canonical.
func encodeCerts(certs []*x509.Certificate) string {
	var b strings.Builder
	for _, c := range certs {
		b.WriteString(encodePEM("CERTIFICATE", c.Raw))
	}
	return b.String()
}
