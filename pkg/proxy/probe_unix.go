//go:build unix

package proxy

import (
	"net"
	"syscall"

	"github.com/edgectl/edgectl/internal/rawio"
)

// prober peeks, without blocking, into the socket of an idle connection.
// It is made once per connection so that a probe does not allocate.
type prober struct {
	rc   syscall.RawConn
	peek func(fd uintptr)
	open bool
}

func newProber(c net.Conn) *prober {
	rc := rawio.SyscallConn(c)
	if rc == nil {
		return nil
	}
	p := &prober{rc: rc}
	p.peek = p.peekFD
	return p
}

// peerOpen reports whether the peer has neither closed the connection nor
// sent data: there is nothing to read yet. Without a probe (a connection
// that is not a socket) it assumes so.
func (p *prober) peerOpen() bool {
	if p == nil {
		return true
	}
	p.open = false
	// Control, not Read: the peek never waits, and runs whatever the
	// connection's read deadline (the last exchange's may have passed
	// while it was idle).
	err := p.rc.Control(p.peek)
	return err == nil && p.open
}

func (p *prober) peekFD(fd uintptr) {
	var b [1]byte
	// Nothing to read yet is EAGAIN; a read of 0 bytes is the peer's FIN.
	_, err := rawio.Peek1(fd, &b)
	p.open = err == syscall.EAGAIN || err == syscall.EWOULDBLOCK
}
