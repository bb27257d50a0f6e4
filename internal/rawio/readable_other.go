//go:build !unix

package rawio

import "net"

// WaitReadable has no socket to wait on outside Unix: the caller's read
// waits (see readable_unix.go).
func WaitReadable(net.Conn, *[1]byte) bool { return true }
