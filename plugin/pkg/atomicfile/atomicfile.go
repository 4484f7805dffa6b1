// Package atomicfile writes files so that a reader, such as a resolver
// watching a directory, sees the old file or the new one, never half of one.
package atomicfile

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Temp writes data, synced, with mode perm, to a new temporary file in dir
// whose name starts with a dot (no *.list pattern matches it), and returns
// its path, ready to be renamed into place.
func Temp(dir string, data []byte, perm os.FileMode) (string, error) {
	return TempFrom(dir, bytes.NewReader(data), perm)
}

// TempFrom is Temp with the data read from r, which need not fit in memory.
func TempFrom(dir string, r io.Reader, perm os.FileMode) (string, error) {
	f, err := os.CreateTemp(dir, ".atomicfile-*.tmp")
	if err != nil {
		return "", err
	}
	_, err = io.Copy(f, r)
	if err == nil {
		err = f.Chmod(perm)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

// Write replaces path with data, with mode perm, through a temporary file
// in the same directory.
func Write(path string, data []byte, perm os.FileMode) error {
	tmp, err := Temp(filepath.Dir(path), data, perm)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err) // err names the temporary file
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}
