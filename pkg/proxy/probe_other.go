//go:build !unix

package proxy

import "net"

// prober would peek into an idle socket; this platform has no probe, and a
// request written into a connection the origin closed fails with a 502.
type prober struct{}

func newProber(net.Conn) *prober { return nil }

// peerOpen assumes the peer kept the connection open.
func (*prober) peerOpen() bool { return true }
