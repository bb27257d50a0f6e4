// Package rawio gives a TCP or Unix connection a Read and a Write that
// issue read(2) and write(2) directly, on Linux.
//
// Go's own connections enter each read and write through the scheduler's
// system-call bookkeeping (entersyscall). On a server whose one CPU goes
// idle between bursts, that bookkeeping is what wakes the runtime's
// monitor thread (sysmon) from its deep sleep after every idle period and
// keeps it polling every 20 µs, and what lets it hand the scheduler's P
// to another thread when a loopback write runs long: measured under the
// benchmark harness's keep-alive load, 1.5 context switches per request
// against 1.0 with raw calls, and about 9% more CPU per request.
//
// The sockets Go creates are non-blocking, so these calls never wait in
// the kernel: a read with nothing to read and a write with no room fail
// with EAGAIN, and the connection then waits for readiness in Go's
// network poller exactly as net's connections do (syscall.RawConn), under
// the same deadlines. Errors are the ones net's connections return: a
// *net.OpError wrapping an *os.SyscallError, io.EOF at the end of the
// stream, os.ErrDeadlineExceeded and net.ErrClosed as the cause of a
// timeout and of a use after Close. FuzzDifferential compares the two.
// (An error's Net is its address's network, "tcp" or "unix", where net's
// names the network dialled or listened on, which may be "tcp4" or
// "tcp6".)
package rawio
