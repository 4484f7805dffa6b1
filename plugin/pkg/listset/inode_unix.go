//go:build unix

package listset

import (
	"os"
	"syscall"
)

// inode returns the device and inode numbers of a file: a file replaced by
// another of the same size and time still gets a new stamp.
func inode(fi os.FileInfo) (dev, ino uint64) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Dev), uint64(st.Ino)
	}
	return 0, 0
}
