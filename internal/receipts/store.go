package receipts

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/regblock/regblock/plugin/pkg/atomicfile"
	"github.com/regblock/regblock/plugin/pkg/receipt"
	"github.com/regblock/regblock/plugin/pkg/regularfile"
)

// Record is one line of a resolver's file: the receipt's exact bytes as
// received, with its signature, so that anyone holding the ISP's key can
// check it again with stock minisign (docs/receipts.md shows how).
type Record struct {
	Received time.Time `json:"received"`
	Key      string    `json:"key"` // ID of the key that signed it, hex
	Result   string    `json:"result"`
	// Body is the receipt as signed, byte for byte (base64 in the file):
	// re-encoding it (compacting, escaping) would make it stop verifying.
	Body      []byte `json:"body"`
	Signature string `json:"signature"` // the receipt.SignatureHeader value
	// Receipt is how files written before Body kept a receipt: parsed and
	// encoded again, so not always the bytes that were signed.
	Receipt json.RawMessage `json:"receipt,omitempty"`
}

// Bytes returns the receipt as stored: the signed bytes, or for an old
// record its re-encoded JSON.
func (rec Record) Bytes() []byte {
	if rec.Body != nil {
		return rec.Body
	}
	return rec.Receipt
}

// maxLine bounds a stored line: a receipt of receipt.MaxSize bytes in
// base64, its signature and the record's other fields. A longer line was
// not written by this receiver.
const maxLine = receipt.MaxSize*4/3 + 64<<10

// scanRecords reads a resolver's file line by line and hands keep each
// record with its line as stored, oldest first. It counts the damaged
// lines instead: a line that is not a record, one longer than any this
// receiver writes, or a last line without its newline (a write cut short).
// No line is held beyond maxLine.
func scanRecords(path string, keep func(rec Record, line []byte)) (damaged int, err error) {
	f, err := openStored(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 64<<10)
	for {
		line, whole, err := readLine(r)
		if len(line) > 0 {
			rec, ok := readRecord(line)
			if whole && line[len(line)-1] == '\n' && ok {
				keep(rec, line)
			} else {
				damaged++
			}
		}
		if err == io.EOF {
			return damaged, nil
		} else if err != nil {
			return damaged, fmt.Errorf("%s: %w", path, err)
		}
	}
}

// readRecord reads one stored line. A line as this receiver writes it
// (encoding/json's order of Record's fields, no escapes in the strings)
// takes a fast path that skips validating the whole line with
// encoding/json, a third of a report's time; any other line is read by
// encoding/json.
func readRecord(line []byte) (rec Record, ok bool) {
	if rec, ok := readWritten(line); ok {
		return rec, true
	}
	return rec, json.Unmarshal(line, &rec) == nil && rec.Bytes() != nil
}

// readWritten reads a line exactly as appendLine writes a Record, its
// strings printable ASCII without escapes, or reports false.
func readWritten(line []byte) (rec Record, ok bool) {
	rest := line
	field := func(name string) (string, bool) {
		prefix := `"` + name + `":"`
		if len(rest) < 1+len(prefix) || (rest[0] != '{' && rest[0] != ',') || string(rest[1:1+len(prefix)]) != prefix {
			return "", false
		}
		rest = rest[1+len(prefix):]
		end := bytes.IndexByte(rest, '"')
		if end < 0 {
			return "", false
		}
		for _, c := range rest[:end] {
			if c < 0x20 || c >= 0x7f || c == '\\' {
				return "", false // an escape, a control or non-ASCII byte: encoding/json's to read
			}
		}
		value := rest[:end]
		rest = rest[end+1:]
		return string(value), true
	}
	received, ok1 := field("received")
	key, ok2 := field("key")
	result, ok3 := field("result")
	body, ok4 := field("body")
	sig, ok5 := field("signature")
	if !(ok1 && ok2 && ok3 && ok4 && ok5) || string(rest) != "}\n" || body == "" {
		return rec, false
	}
	t, err := time.Parse(time.RFC3339Nano, received)
	if err != nil {
		return rec, false
	}
	decoded, err := base64.StdEncoding.DecodeString(body)
	if err != nil || len(decoded) == 0 {
		return rec, false
	}
	return Record{Received: t, Key: key, Result: result, Body: decoded, Signature: sig}, true
}

// readLine returns the next line with its newline, or what is left of the
// file without one. A line longer than maxLine is read to its end but
// returned cut to maxLine, with whole false.
func readLine(r *bufio.Reader) (line []byte, whole bool, err error) {
	whole = true
	for {
		part, err := r.ReadSlice('\n')
		if len(line)+len(part) > maxLine {
			whole = false
			part = part[:max(0, maxLine-len(line))]
		}
		line = append(line, part...)
		if err != bufio.ErrBufferFull {
			return line, whole, err
		}
	}
}

// DamagedSuffix starts the name of the copy of a resolver's file that
// repair sets aside, whole, before it drops the damaged lines.
const DamagedSuffix = ".damaged-"

// openStored opens a resolver's file for reading: only a regular file, not
// a link to one (a FIFO would block the start, a device never end).
func openStored(path string) (*os.File, error) {
	if fi, err := os.Lstat(path); err != nil {
		return nil, err
	} else if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	f, _, err := regularfile.Open(path)
	return f, err
}

// repair rewrites a resolver's file with its good lines only, byte for
// byte, after copying the file as it was beside it (path.damaged-TIME):
// nothing is lost, and no new record is appended onto a torn line. When
// the disk has no room for it, the file stays as it is (appendLine starts
// each record on a line of its own all the same).
func repair(path string, now time.Time) error {
	var kept bytes.Buffer
	if _, err := scanRecords(path, func(_ Record, line []byte) { kept.Write(line) }); err != nil {
		return err
	}
	aside := path + DamagedSuffix + now.UTC().Format("20060102T150405.000000000Z")
	if err := copyFile(path, aside); err != nil {
		return fmt.Errorf("setting %s aside: %w", path, err)
	}
	return atomicfile.Write(path, kept.Bytes(), 0o640)
}

// copyFile copies the regular file at from to a new file to.
func copyFile(from, to string) error {
	in, err := openStored(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(to)
	}
	return err
}

// appendLine appends line and a newline to the file at path, a regular
// file or none yet, in one write, on a line of its own: after a torn line
// (a crash, or a repair the disk had no room for) it writes a newline
// first. A write cut short (a full disk) is cut off again.
func appendLine(path string, line []byte) error {
	if fi, err := os.Lstat(path); err == nil && !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", path)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	if err == nil {
		data := append(bytes.Clone(line), '\n')
		last := []byte{'\n'}
		if fi.Size() > 0 {
			_, err = f.ReadAt(last, fi.Size()-1)
		}
		if err == nil && last[0] != '\n' {
			data = append([]byte{'\n'}, data...)
		}
		if err == nil {
			if _, err = f.Write(data); err != nil {
				err = errors.Join(err, f.Truncate(fi.Size()))
			}
		}
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Load reads the records of one resolver's file, oldest first. Damaged
// lines (see scanRecords) are left out and counted, so that a check can
// say so without failing on them.
func Load(path string) (recs []Record, damaged int, err error) {
	damaged, err = scanRecords(path, func(rec Record, _ []byte) { recs = append(recs, rec) })
	return recs, damaged, err
}

// Scan hands fn each record of one resolver's file, oldest first, as Load
// reads them, without holding them all: for a reader of a whole store.
func Scan(path string, fn func(Record)) (damaged int, err error) {
	return scanRecords(path, func(rec Record, _ []byte) { fn(rec) })
}

// storeFiles returns the resolvers' files in dir. A directory that cannot
// be read is an error: starting without its resolvers would let others
// take their names.
func storeFiles(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var files []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".jsonl") {
			files = append(files, filepath.Join(dir, e.Name()))
		}
	}
	return files, nil
}
