package blocklist

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// ErrNotRegular is wrapped by the errors of OpenFile and ReadFile for a
// path that is not a regular file: a FIFO, a socket, a device, a directory,
// or a symbolic link to one of them. Whoever can write a lists directory
// must not be able to make the resolver wait for ever on a read, or read a
// device without end.
var ErrNotRegular = errors.New("not a regular file")

// OpenFile opens path for reading, following symbolic links, only if it is
// a regular file. It never waits: the type is checked before the file is
// opened, the file is opened without blocking, and the type is checked
// again on what was opened, in case another file was swapped in between.
// Errors are *LoadError with reason io_error and name the path.
func OpenFile(path string) (*os.File, fs.FileInfo, error) {
	if fi, err := os.Stat(path); err != nil {
		return nil, nil, &LoadError{ReasonIOError, err}
	} else if !fi.Mode().IsRegular() {
		return nil, nil, notRegular(path, fi)
	}
	// O_NONBLOCK: opening a FIFO swapped in after the Stat returns at once
	// instead of waiting for a writer; it changes nothing for a regular
	// file. O_NOCTTY: a terminal never becomes ours.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, nil, &LoadError{ReasonIOError, err}
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, &LoadError{ReasonIOError, err}
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, nil, notRegular(path, fi)
	}
	return f, fi, nil
}

func notRegular(path string, fi fs.FileInfo) error {
	return &LoadError{ReasonIOError, fmt.Errorf("%s: %w (%s); not read", path, ErrNotRegular, fileType(fi.Mode()))}
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

// ReadFile reads the regular file at path whole, if it is at most maxSize
// bytes. The buffer is the size the file reports, never more than
// maxSize+1: a file that grows while it is read is refused rather than
// followed. Errors are *LoadError and name the file: too_large over the
// limit, io_error otherwise.
func ReadFile(path string, maxSize int64) ([]byte, error) {
	f, fi, err := OpenFile(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	size := fi.Size()
	if size > maxSize {
		return nil, tooLarge(path, maxSize)
	}
	// One byte more than reported, to see the end of the file without a
	// second buffer.
	buf := make([]byte, size+1)
	n, err := io.ReadFull(f, buf)
	switch {
	case err == io.ErrUnexpectedEOF || err == io.EOF:
		return buf[:n], nil
	case err != nil:
		return nil, &LoadError{ReasonIOError, fmt.Errorf("%s: %w", path, err)}
	case size == maxSize:
		return nil, tooLarge(path, maxSize)
	}
	return nil, &LoadError{ReasonIOError, fmt.Errorf("%s: grew while it was read; it is read again when it changes", path)}
}

func tooLarge(path string, maxSize int64) error {
	return &LoadError{ReasonTooLarge, fmt.Errorf("%s: larger than the size limit of %d bytes", path, maxSize)}
}
