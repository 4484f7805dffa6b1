//go:build unix

package listset

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestSetSpecialFiles checks that a FIFO named like a list is refused once,
// not at every scan, and does not stop other lists from applying.
func TestSetSpecialFiles(t *testing.T) {
	f := newFixture(t)
	if err := syscall.Mkfifo(filepath.Join(f.dir, "fifo.list"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(f.dir, "fifo.list.minisig"), f.key.Sign([]byte("x")), 0o644)
	f.set.Scan()
	f.expect("rejected fifo io_error")
	f.write("a.list", listText("a", 1, ""))
	f.set.Scan()
	f.expect("applied a 1")
}
