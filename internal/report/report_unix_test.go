//go:build unix

package report

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestPublishedNotRegular: a FIFO named as a list, signature and all, is
// an error naming it, not a report that waits for ever.
func TestPublishedNotRegular(t *testing.T) {
	lists, store := fixture(t)
	fifo := filepath.Join(lists, "stuck.list")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Skip("no FIFOs here:", err)
	}
	os.WriteFile(fifo+".minisig", []byte("x"), 0o644)
	done := make(chan error, 1)
	go func() {
		_, err := Build(Options{Receipts: store, Lists: lists})
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "stuck.list") {
			t.Errorf("a FIFO in the publisher's directory: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the report waits on a FIFO")
	}
}
