//go:build !unix

package rawio

import (
	"net"
	"syscall"
)

// WaitReadable has no socket to wait on outside Unix: the caller's read
// waits (see readable_unix.go).
func WaitReadable(net.Conn, *[1]byte) bool { return true }

// SocketConn returns nil outside Unix: nothing waits on a raw socket.
func SocketConn(net.Conn) syscall.RawConn { return nil }
