package edge

import (
	"time"

	"github.com/edgectl/edgectl/pkg/manifest"
)

// keyStamp is what a compile saw of a private-key file: its identity and
// times when it was read, and the SHA-256 of what it read. The next compile
// trusts the digest without reading the file again when the file's stamp
// is the same, so that a reload of 10,000 domains with a key file each
// stats them instead of reading them all.
//
// Any change to a file (a write, a rename over it, a chmod) moves its
// change time, which user space cannot set back. A file changed twice
// within one tick of the kernel's coarse clock could keep its stamp, so a
// stamp is trusted only for a file whose last change was keySettle before
// it was read; a younger file is read again at every compile until then.
type keyStamp struct {
	dev, ino     uint64
	size         int64
	mtime, ctime int64 // UnixNano
	readAt       int64 // UnixNano, taken before the read
	sum          [32]byte
}

// keySettle is how long before its read a key file must have last changed
// for its stamp to be trusted.
var keySettle = 2 * time.Second

// sameFile reports whether s and t stamp the same file unchanged.
func (s keyStamp) sameFile(t keyStamp) bool {
	return s.dev == t.dev && s.ino == t.ino && s.size == t.size && s.mtime == t.mtime && s.ctime == t.ctime
}

// stampedKey returns the digest of spec's private-key file from the
// previous compile when the file is unchanged since (see keyStamp), with
// ok; otherwise a fresh stamp of the file to record once it is read, with
// stamped (false when there is nothing to stamp: no key file, no
// Options.StatFile, a file that cannot be stat'ed, another platform).
func (c *compiler) stampedKey(spec *manifest.CertificateSpec) (st keyStamp, ok, stamped bool) {
	if spec.PrivateKeyFile == "" || c.opts.StatFile == nil {
		return keyStamp{}, false, false
	}
	now := time.Now().UnixNano()
	fi, err := c.opts.StatFile(spec.PrivateKeyFile)
	if err != nil {
		return keyStamp{}, false, false
	}
	st, stamped = fileStamp(fi)
	if !stamped {
		return keyStamp{}, false, false
	}
	st.readAt = now
	if p, found := c.prev.keys[spec.PrivateKeyFile]; found && p.sameFile(st) && p.ctime < p.readAt-int64(keySettle) {
		return p, true, true
	}
	return st, false, true
}
