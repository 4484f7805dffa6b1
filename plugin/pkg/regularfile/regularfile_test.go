package regularfile

import (
	"os"
	"path/filepath"
	"testing"
)

// TestReadExactLimit reads files at the limit and one byte over it.
func TestReadExactLimit(t *testing.T) {
	dir := t.TempDir()
	at, over := filepath.Join(dir, "at"), filepath.Join(dir, "over")
	os.WriteFile(at, make([]byte, 10), 0o644)
	os.WriteFile(over, make([]byte, 11), 0o644)
	if data, err := Read(at, 10); err != nil || len(data) != 10 {
		t.Errorf("at the limit: %d bytes, %v", len(data), err)
	}
	if _, err := Read(over, 10); err == nil {
		t.Error("one byte over the limit: read")
	}
}
