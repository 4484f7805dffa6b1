//go:build unix

package main

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSpecialFiles: the commands that read a list, a delta or a policy
// refuse a FIFO (which would block them) and a device (which would fill
// memory) at once, as the resolver does, instead of reading them.
func TestSpecialFiles(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.list")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	list := writeFile(t, dir, "a.list", exampleList)
	for _, args := range [][]string{
		{"inspect", fifo}, {"inspect", "/dev/zero"}, {"lint", fifo},
		{"diff", list, fifo}, {"delta", "-o", filepath.Join(dir, "x.delta"), list, "/dev/zero"},
		{"hash", "-o", filepath.Join(dir, "h.list"), fifo}, {"export", "-format", "rpz", fifo},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		var stderr bytes.Buffer
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Stderr = &stderr
		err := cmd.Run()
		late := ctx.Err() != nil
		cancel()
		var exit *exec.ExitError
		switch {
		case late:
			t.Errorf("regblock %s: still reading after 20 s", strings.Join(args, " "))
		case !errors.As(err, &exit) || exit.ExitCode() != 1 || !strings.Contains(stderr.String(), "not a regular file"):
			t.Errorf("regblock %s: %v, %q; want exit 1 and not a regular file", strings.Join(args, " "), err, stderr.String())
		}
	}
}
