//go:build !unix

package state

// processAlive cannot tell on this platform, so a lock is never assumed dead.
func processAlive(int) bool { return true }

// isSyncUnsupported: directories cannot be synced on this platform.
func isSyncUnsupported(error) bool { return true }
