//go:build unix

package rawio

import (
	"crypto/tls"
	"net"
	"syscall"
)

// WaitReadable waits, under c's read deadline, until c's socket has a
// byte to read, or the client closed or reset it, without reading it. It
// reports false when the deadline expired or the connection was closed;
// true when the socket is readable, or when c has no socket to wait on
// (the caller's read then waits). buf receives nothing: a peek needs one
// byte of room.
func WaitReadable(c net.Conn, buf *[1]byte) bool {
	raw := SocketConn(c)
	if raw == nil {
		return true
	}
	err := raw.Read(func(fd uintptr) bool {
		// A peek, not a read: the byte stays for crypto/tls. Ready on
		// data, on end of file (0) and on an error other than "would
		// block"; a spurious wake-up peeks again.
		_, err := Peek1(fd, buf)
		return err != syscall.EAGAIN && err != syscall.EWOULDBLOCK
	})
	return err == nil
}

// SocketConn returns the raw connection of c's socket, under its TLS if c
// is a *tls.Conn, or nil when there is no socket.
func SocketConn(c net.Conn) syscall.RawConn {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	return SyscallConn(c)
}

// SyscallConn returns the raw connection of c's socket, or nil when c is
// not a socket.
func SyscallConn(c net.Conn) syscall.RawConn {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return raw
}
