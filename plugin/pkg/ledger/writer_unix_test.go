//go:build unix

package ledger

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestDamagedHead: a head whose count does not parse, or that is not a
// regular file, neither stops a writer from starting nor hangs a reader.
func TestDamagedHead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	w, _, err := Open(path, func(string, error) {})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		w.Append(Event{Event: ListApplied, List: "a", Serial: u64(uint64(i + 1))})
	}
	head, _ := w.Chain()
	w.Close()
	os.WriteFile(path+".head", []byte(head+" abc\n"), 0o644)
	if w, warning, err := Open(path, func(string, error) {}); err != nil || !errors.Is(warning, ErrHeadCount) {
		t.Errorf("a head with a damaged count: %v, warning %v", err, warning)
	} else if h, n := w.Chain(); h != head || n != 3 {
		t.Errorf("chain %.8s %d, want %.8s and the file's 3 events", h, n, head)
	} else {
		w.Close()
	}
	os.Remove(path + ".head")
	if err := syscall.Mkfifo(path+".head", 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, _, _, err := ReadHead(path); done <- err }()
	select {
	case err := <-done:
		if err == nil || errors.Is(err, os.ErrNotExist) {
			t.Errorf("a FIFO for a head: %v, want an error that is not 'missing'", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ReadHead waits on a FIFO")
	}
}
