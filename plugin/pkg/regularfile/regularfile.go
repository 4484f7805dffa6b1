// Package regularfile reads files that whoever can write a directory may
// have put there: only regular files, never more than a size limit, and
// never waiting on a FIFO or a device. Lists, signatures, keys, passwords,
// the state directory and sync's validators are all read through it.
package regularfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"

	"github.com/regblock/regblock/plugin/pkg/result"
)

// NoLimit is the size limit of a read that has none: the file is read
// whatever its size.
const NoLimit = int64(1) << 62

// ErrNotRegular is wrapped by the errors of Open and Read for a
// path that is not a regular file: a FIFO, a socket, a device, a directory,
// or a symbolic link to one of them. Whoever can write a lists directory
// must not be able to make the resolver wait for ever on a read, or read a
// device without end.
var ErrNotRegular = errors.New("not a regular file")

// Open opens path for reading, following symbolic links, only if it is
// a regular file. It never waits: the type is checked before the file is
// opened, the file is opened without blocking, and the type is checked
// again on what was opened, in case another file was swapped in between.
// Errors are *result.Error with result io_error and name the path.
func Open(path string) (*os.File, fs.FileInfo, error) {
	if fi, err := os.Stat(path); err != nil {
		return nil, nil, &result.Error{Result: result.IOError, Err: err}
	} else if !fi.Mode().IsRegular() {
		return nil, nil, notRegular(path, fi)
	}
	// O_NONBLOCK: opening a FIFO swapped in after the Stat returns at once
	// instead of waiting for a writer; it changes nothing for a regular
	// file. O_NOCTTY: a terminal never becomes ours.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, nil, &result.Error{Result: result.IOError, Err: err}
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, &result.Error{Result: result.IOError, Err: err}
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, nil, notRegular(path, fi)
	}
	return f, fi, nil
}

func notRegular(path string, fi fs.FileInfo) error {
	return &result.Error{Result: result.IOError, Err: fmt.Errorf("%s: %w (%s); not read", path, ErrNotRegular, fileType(fi.Mode()))}
}

// fileType names the type of a file that is not a regular one.
func fileType(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	}
	return "type " + m.Type().String()
}

// Read reads the regular file at path whole, if it is at most maxSize
// bytes. The buffer is the size the file reports, never more than
// maxSize+1: a file that grows while it is read is refused rather than
// followed. Errors are *result.Error and name the file: too_large over
// the limit, io_error otherwise.
func Read(path string, maxSize int64) ([]byte, error) {
	f, fi, err := Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	size := fi.Size()
	if size > maxSize {
		return nil, TooLarge(path, maxSize)
	}
	// One byte more than reported, to see the end of the file without a
	// second buffer.
	buf := make([]byte, size+1)
	n, err := io.ReadFull(f, buf)
	switch {
	case err == io.ErrUnexpectedEOF || err == io.EOF:
		return buf[:n], nil
	case err != nil:
		return nil, &result.Error{Result: result.IOError, Err: fmt.Errorf("%s: %w", path, err)}
	case size == maxSize:
		return nil, TooLarge(path, maxSize)
	}
	return nil, &result.Error{Result: result.IOError, Err: fmt.Errorf("%s: grew while it was read; it is read again when it changes", path)}
}

// TooLarge is the error of a file at path over the size limit maxSize.
func TooLarge(path string, maxSize int64) error {
	return &result.Error{Result: result.TooLarge, Err: fmt.Errorf("%s: larger than the size limit of %d bytes", path, maxSize)}
}
