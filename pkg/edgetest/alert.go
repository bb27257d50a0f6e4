package edgetest

import (
	"crypto/tls"
	"errors"
	"net"
	"strings"

	"github.com/edgectl/edgectl/pkg/pki"
)

// remoteAlert returns the RFC name of the alert the peer sent, when err
// carries one: a tls.AlertError, or what crypto/tls returns over TCP, a
// *net.OpError whose Op is "remote error" and whose Err is its own
// (unexported) alert type, which prints exactly as tls.AlertError of the
// same code does.
func remoteAlert(err error) (string, bool) {
	var ae tls.AlertError
	if errors.As(err, &ae) {
		if name := pki.AlertName(uint8(ae)); name != "" {
			return name, true
		}
	}
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "remote error" || op.Err == nil {
		return "", false
	}
	text := strings.TrimPrefix(op.Err.Error(), "tls: ")
	if code, ok := pki.AlertByGoText(text); ok {
		return pki.AlertName(code), true
	}
	// A code crypto/tls has no wording for: "alert(N)".
	return strings.ReplaceAll(text, " ", "_"), true
}
