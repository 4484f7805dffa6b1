//go:build unix

package regularfile_test

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/regblock/regblock/plugin/pkg/minisig"
	"github.com/regblock/regblock/plugin/pkg/regularfile"
	"github.com/regblock/regblock/plugin/pkg/result"
)

// TestReadFileSpecialFiles reads every kind of file a hostile writer of a
// lists directory can make, each under a name that regularfile.Read and
// minisig.ReadPublicKey are asked for: none may block, none may be read past the
// limit, and regular files within it are read whole.
func TestReadSpecialFiles(t *testing.T) {
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
		want    string        // the content, when read
		reason  result.Result // the refusal's reason otherwise
		regular bool          // false: refused as not a regular file
	}{
		{name: "small", want: "12345", regular: true},
		{name: "smalllink", want: "12345", regular: true},
		{name: "big", reason: result.TooLarge, regular: true},
		{name: "fifo", reason: result.IOError},
		{name: "fifolink", reason: result.IOError},
		{name: "zero", reason: result.IOError},
		{name: "dir", reason: result.IOError},
	} {
		data, err := regularfile.Read(path(tc.name), 10)
		if tc.want != "" {
			if err != nil || string(data) != tc.want {
				t.Errorf("%s: %q, %v; want %q", tc.name, data, err, tc.want)
			}
			continue
		}
		var le *result.Error
		if !errors.As(err, &le) || le.Result != tc.reason || errors.Is(err, regularfile.ErrNotRegular) == tc.regular {
			t.Errorf("%s: %v; want a %s refusal (not regular: %v)", tc.name, err, tc.reason, !tc.regular)
		}
		if _, err := minisig.ReadPublicKey(path(tc.name)); err == nil {
			t.Errorf("ReadPublicKey(%s) accepted it", tc.name)
		}
	}
}
