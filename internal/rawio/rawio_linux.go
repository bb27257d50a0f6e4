//go:build linux

package rawio

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"unsafe"
)

// maxRW is the most one read(2) or write(2) is asked for, as in Go's
// internal/poll: some kernels fail larger ones.
const maxRW = 1 << 30

// Conn is a connection whose Read and Write call read(2) and write(2)
// directly and wait for readiness in Go's network poller. Deadlines,
// Close and the addresses are the wrapped connection's.
type Conn struct {
	net.Conn
	rc syscall.RawConn
	// The network and addresses that errors name, as net's do.
	network       string
	local, remote net.Addr

	rmu    sync.Mutex // one Read at a time: the fields below are its
	rbuf   []byte
	rn     int
	rerr   syscall.Errno
	readFn func(fd uintptr) bool

	wmu     sync.Mutex // one Write at a time
	wbuf    []byte
	wn      int
	werr    syscall.Errno
	short   bool // write(2) wrote nothing and reported no error
	writeFn func(fd uintptr) bool
}

// Wrap returns c with direct reads and writes when c is a *net.TCPConn
// or a *net.UnixConn of type "unix" (a stream), and c itself otherwise.
func Wrap(c net.Conn) net.Conn {
	local := c.LocalAddr()
	switch c.(type) {
	case *net.TCPConn:
	case *net.UnixConn:
		if local == nil || local.Network() != "unix" {
			return c // datagram and packet sockets: a read is a message
		}
	default:
		return c
	}
	rc, err := c.(syscall.Conn).SyscallConn()
	if err != nil || local == nil {
		return c
	}
	w := &Conn{Conn: c, rc: rc, network: local.Network(), local: local, remote: c.RemoteAddr()}
	w.readFn = w.read
	w.writeFn = w.write
	return w
}

// SyscallConn returns the wrapped connection's raw connection.
func (c *Conn) SyscallConn() (syscall.RawConn, error) { return c.rc, nil }

// Read reads as net.Conn's Read does: at most len(p) bytes, waiting
// until at least one can be read; io.EOF at the peer's end of stream.
func (c *Conn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		// As net's connections: no system call and no wait, but a closed
		// connection says so.
		if err := c.rc.Control(func(uintptr) {}); err != nil {
			return 0, c.opError("read", err)
		}
		return 0, nil
	}
	if len(p) > maxRW {
		p = p[:maxRW]
	}
	c.rmu.Lock()
	c.rbuf, c.rn, c.rerr = p, 0, 0
	err := c.rc.Read(c.readFn)
	n, errno := c.rn, c.rerr
	c.rbuf = nil
	c.rmu.Unlock()
	switch {
	case err != nil:
		return 0, c.opError("read", err)
	case errno != 0:
		return 0, c.opError("read", os.NewSyscallError("read", errno))
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

func (c *Conn) read(fd uintptr) bool {
	for {
		r, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(unsafe.SliceData(c.rbuf))), uintptr(len(c.rbuf)))
		switch e {
		case 0:
			c.rn = int(r)
			return true
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false // wait for readiness, then read again
		default:
			c.rerr = e
			return true
		}
	}
}

// Write writes all of p, waiting for room as net.Conn's Write does; it
// returns how much was written before an error.
func (c *Conn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	c.wbuf, c.wn, c.werr, c.short = p, 0, 0, false
	err := c.rc.Write(c.writeFn)
	n, errno, short := c.wn, c.werr, c.short
	c.wbuf = nil
	c.wmu.Unlock()
	switch {
	case err != nil:
		return n, c.opError("write", err)
	case errno != 0:
		return n, c.opError("write", os.NewSyscallError("write", errno))
	case short:
		return n, c.opError("write", io.ErrUnexpectedEOF)
	}
	return n, nil
}

func (c *Conn) write(fd uintptr) bool {
	// At least one call: as with net's connections, a write of nothing
	// still reports a broken connection.
	for first := true; first || c.wn < len(c.wbuf); first = false {
		b := c.wbuf[c.wn:]
		if len(b) > maxRW {
			b = b[:maxRW]
		}
		r, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b)))
		switch {
		case e == 0 && len(b) == 0:
			return true
		case e == 0 && r == 0:
			c.short = true // as net's connections: never for a socket
			return true
		case e == 0:
			c.wn += int(r)
		case e == syscall.EINTR:
		case e == syscall.EAGAIN:
			return false // wait for room, then go on
		default:
			c.werr = e
			return true
		}
	}
	return true
}

// opError returns err as net's connections return it: a *net.OpError of
// op. The raw connection's own errors (a deadline, a closed connection)
// arrive as a *net.OpError of op "raw-read" or "raw-write": their cause
// is kept.
func (c *Conn) opError(op string, err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) {
		err = oe.Err
	}
	return &net.OpError{Op: op, Net: c.network, Source: c.local, Addr: c.remote, Err: err}
}

// Peek1 reads one byte into b without consuming it and without waiting:
// recv(2) with MSG_PEEK and MSG_DONTWAIT. It returns 0 and no error at
// the peer's end of stream, EAGAIN when there is nothing to read yet.
func Peek1(fd uintptr, b *[1]byte) (n int, errno syscall.Errno) {
	for {
		r, _, e := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b[0])), 1, syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
		if e != syscall.EINTR {
			return int(r), e
		}
	}
}
