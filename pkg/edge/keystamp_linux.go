package edge

import (
	"os"
	"syscall"
)

// fileStamp is a key file's identity and times (see keyStamp).
func fileStamp(fi os.FileInfo) (keyStamp, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return keyStamp{}, false
	}
	return keyStamp{
		dev: st.Dev, ino: st.Ino, size: st.Size,
		mtime: st.Mtim.Nano(), ctime: st.Ctim.Nano(),
	}, true
}
