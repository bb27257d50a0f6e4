//go:build unix

package state

import (
	"errors"
	"syscall"
)

// processAlive reports whether a process with pid exists on this host. A
// process owned by another user (EPERM) exists.
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

func isSyncUnsupported(err error) bool {
	return errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOTSUP)
}
