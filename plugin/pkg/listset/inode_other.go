//go:build !unix

package listset

import "os"

// inode returns zeros where there are no inode numbers: a stamp is then
// the size and modification time.
func inode(os.FileInfo) (dev, ino uint64) { return 0, 0 }
