//go:build !unix

package h1

import "net"

// waitReadable has no socket to wait on outside Unix: the caller's read
// waits (see readable_unix.go).
func waitReadable(net.Conn, *[1]byte) bool { return true }
