//go:build unix

package blocklist

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestReadFileSpecialFiles reads every kind of file a hostile writer of a
// lists directory can make, each under a name that ReadFile and
// ReadPublicKey are asked for: none may block, none may be read past the
// limit, and regular files within it are read whole.
func TestReadFileSpecialFiles(t *testing.T) {
	dir := t.TempDir()
	path := func(name string) string { return filepath.Join(dir, name) }
	if err := os.WriteFile(path("small"), []byte("12345"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path("big"), make([]byte, 100), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(path("fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Symlink("/dev/zero", path("zero"))
	os.Symlink(path("fifo"), path("fifolink"))
	os.Symlink(path("small"), path("smalllink"))
	os.Mkdir(path("dir"), 0o755)

	for _, tc := range []struct {
		name    string
		want    string // the content, when read
		reason  Reason // the refusal's reason otherwise
		regular bool   // false: refused as not a regular file
	}{
		{name: "small", want: "12345", regular: true},
		{name: "smalllink", want: "12345", regular: true},
		{name: "big", reason: ReasonTooLarge, regular: true},
		{name: "fifo", reason: ReasonIOError},
		{name: "fifolink", reason: ReasonIOError},
		{name: "zero", reason: ReasonIOError},
		{name: "dir", reason: ReasonIOError},
	} {
		data, err := ReadFile(path(tc.name), 10)
		if tc.want != "" {
			if err != nil || string(data) != tc.want {
				t.Errorf("%s: %q, %v; want %q", tc.name, data, err, tc.want)
			}
			continue
		}
		var le *LoadError
		if !errors.As(err, &le) || le.Reason != tc.reason || errors.Is(err, ErrNotRegular) == tc.regular {
			t.Errorf("%s: %v; want a %s refusal (not regular: %v)", tc.name, err, tc.reason, !tc.regular)
		}
		if _, err := ReadPublicKey(path(tc.name)); err == nil {
			t.Errorf("ReadPublicKey(%s) accepted it", tc.name)
		}
	}
}
