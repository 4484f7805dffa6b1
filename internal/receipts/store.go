package receipts

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/regblock/regblock/plugin/pkg/atomicfile"
	"github.com/regblock/regblock/plugin/pkg/receipt"
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
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 64<<10)
	for {
		line, whole, err := readLine(r)
		if len(line) > 0 {
			var rec Record
			if whole && line[len(line)-1] == '\n' && json.Unmarshal(line, &rec) == nil && rec.Bytes() != nil {
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

// repair rewrites a resolver's file with its good lines only, byte for
// byte, after keeping the file as it was beside it (path.damaged-TIME):
// nothing is lost, and no new record is ever appended onto a torn line.
func repair(path string, now time.Time) error {
	var kept bytes.Buffer
	if _, err := scanRecords(path, func(_ Record, line []byte) { kept.Write(line) }); err != nil {
		return err
	}
	aside := path + DamagedSuffix + now.UTC().Format("20060102T150405.000000000Z")
	if err := os.Link(path, aside); err != nil {
		return fmt.Errorf("setting %s aside: %w", path, err)
	}
	return atomicfile.Write(path, kept.Bytes(), 0o640)
}

// appendLine appends line and a newline to the file at path in one write.
// A write cut short (a full disk) is cut off again, so that the next
// record starts on a line of its own.
func appendLine(path string, line []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	if err == nil {
		if _, err = f.Write(append(bytes.Clone(line), '\n')); err != nil {
			err = errors.Join(err, f.Truncate(fi.Size()))
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

// storeFiles returns the resolvers' files in dir.
func storeFiles(dir string) ([]string, error) {
	return filepath.Glob(filepath.Join(dir, "*.jsonl"))
}
