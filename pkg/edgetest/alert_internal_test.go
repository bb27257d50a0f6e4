package edgetest

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"testing"
)

// TestRemoteAlert reads the alert a peer sent from the error's type, not
// from a message that merely looks like one.
func TestRemoteAlert(t *testing.T) {
	t.Parallel()
	// What crypto/tls returns over TCP: its alert type inside a net.OpError.
	// tls.AlertError(48) prints as that type does.
	received := &net.OpError{Op: "remote error", Err: tls.AlertError(48)}
	tests := map[string]struct {
		err  error
		want string
		ok   bool
	}{
		"received":        {err: fmt.Errorf("reading: %w", received), want: "unknown_ca", ok: true},
		"alert error":     {err: fmt.Errorf("quic: %w", tls.AlertError(116)), want: "certificate_required", ok: true},
		"no wording":      {err: &net.OpError{Op: "remote error", Err: tls.AlertError(200)}, want: "alert(200)", ok: true},
		"local error":     {err: &net.OpError{Op: "local error", Err: errors.New("tls: unknown certificate authority")}},
		"look-alike text": {err: errors.New("remote error: tls: unknown certificate authority")},
		"nil":             {},
	}
	for name, tc := range tests {
		got, ok := remoteAlert(tc.err)
		if got != tc.want || ok != tc.ok {
			t.Errorf("%s: remoteAlert(%v) = %q, %v; want %q, %v", name, tc.err, got, ok, tc.want, tc.ok)
		}
	}
}
