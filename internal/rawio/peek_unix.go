//go:build unix && !linux

package rawio

import "syscall"

// Peek1 reads one byte into b without consuming it and without waiting.
func Peek1(fd uintptr, b *[1]byte) (n int, errno syscall.Errno) {
	n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	if e, ok := err.(syscall.Errno); ok {
		return n, e
	}
	return n, 0
}
