package blocklist

import (
	"bufio"
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"aead.dev/minisign"

	"github.com/regblock/regblock/plugin/pkg/minisig"
	"github.com/regblock/regblock/plugin/pkg/regularfile"
	"github.com/regblock/regblock/plugin/pkg/result"
)

// A delta carries one version's change to a list: the new version's whole
// header, the version it applies to ("from"), the new version's file
// digest ("sha256") and a checksum of its entries ("digest"), then "+" and
// "-" entry lines. See "Signed deltas" in docs/deltas.md.

// DeltaSuffix ends the name of a delta file.
const DeltaSuffix = ".delta"

const deltaVersionLine = "#! regblock-delta 1"

// deltaHeaders are the header keys a delta has besides a list's.
var deltaHeaders = []string{"from", "sha256", "digest"}

// IsDelta reports whether a file name is a delta file (NAME.SERIAL.delta in
// a lists directory, SERIAL.delta on a publisher).
func IsDelta(name string) bool {
	return strings.HasSuffix(name, DeltaSuffix) && len(name) > len(DeltaSuffix)
}

// Checksum is a checksum of a list version's entries that can be updated
// entry by entry: package blockindex computes it (blockindex.Checksum).
type Checksum [16]byte

// String returns c in lowercase hex, as a delta writes it.
func (c Checksum) String() string { return hex.EncodeToString(c[:]) }

// Base names the version a delta applies to.
type Base struct {
	Serial uint64
	SHA256 [sha256.Size]byte // of that version's file
}

// Delta is a parsed delta.
type Delta struct {
	// List is the version the delta makes, without entries: the new
	// version's header, SHA256 its whole file's digest (the "sha256"
	// header), Signers the delta's signers, File the delta's path.
	*List
	From     Base
	Checksum Checksum // of the new version's entries (the "digest" header)
	// Removed and Added are the "-" and "+" lines, in file order.
	Removed, Added []Entry
	// FileSHA256 is the digest of the delta file's own bytes.
	FileSHA256 [sha256.Size]byte
}

// ParseDelta parses the delta in data, read from file (used in messages
// only). It returns every error it finds as an ErrorList, and no delta
// when there is any.
func ParseDelta(file string, data []byte) (*Delta, error) {
	d := &Delta{FileSHA256: sha256.Sum256(data)}
	d.List = &List{File: file}
	p := parser{list: d.List, seen: map[string]int{}, delta: d}
	if IsRPZ(file) {
		p.errorf("an RPZ zone cannot be a delta: publish the whole zone")
		return nil, p.errs
	}
	t := textLines(string(data))
	p.parseLines(&t)
	if len(p.errs) == 0 && d.Serial <= d.From.Serial {
		p.line = p.seen["serial"]
		p.errorf("serial %d is not above the serial it starts from (%d)", d.Serial, d.From.Serial)
	}
	if len(p.errs) > 0 {
		return nil, p.errs
	}
	return d, nil
}

// OpenDelta verifies that sig is a signature of data by one of keys, then
// parses data, the delta read from path. Errors are *result.Error.
func OpenDelta(path string, data, sig []byte, keys []minisign.PublicKey) (*Delta, error) {
	signers, err := minisig.Verify(data, sig, keys)
	if err != nil {
		return nil, &result.Error{Result: result.BadSignature, Err: fmt.Errorf("%s: %v", path+minisig.Suffix, err)}
	}
	d, err := ParseDelta(path, data)
	if err != nil {
		return nil, &result.Error{Result: result.ParseError, Err: err}
	}
	d.Signers = signers
	return d, nil
}

// CheckSigned verifies, reading the file at path once as a stream (at
// most maxSize bytes), that sig holds a valid signature of it by one of
// keys: a file that is not signed costs a read, not its size in memory,
// before a delta is read whole. A legacy signature, which needs the whole
// file, is left to OpenDelta. Errors are *result.Error.
func CheckSigned(path string, maxSize int64, sig []byte, keys []minisign.PublicKey) error {
	bad := func(err error) error {
		return &result.Error{Result: result.BadSignature, Err: fmt.Errorf("%s: %v", path+minisig.Suffix, err)}
	}
	signed, err := minisig.Trusted(sig, keys)
	if err != nil {
		return bad(err)
	}
	if slices.ContainsFunc(signed, func(s minisig.Signature) bool { return !s.Hashed }) {
		return nil
	}
	f, fi, err := regularfile.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if fi.Size() > maxSize {
		return regularfile.TooLarge(path, maxSize)
	}
	r := minisign.NewReader(io.LimitReader(f, maxSize+1))
	if n, err := io.Copy(io.Discard, r); err != nil {
		return &result.Error{Result: result.IOError, Err: fmt.Errorf("%s: %w", path, err)}
	} else if n > maxSize {
		return regularfile.TooLarge(path, maxSize)
	}
	if _, err := minisig.Verified(signed, func(s minisig.Signature) bool { return r.Verify(s.Key, s.Text) }); err != nil {
		return bad(err)
	}
	return nil
}

// LoadDelta reads the delta at path (at most maxSize bytes) and its
// signature, and verifies and parses it as OpenDelta does.
func LoadDelta(path string, keys []minisign.PublicKey, maxSize int64) (*Delta, error) {
	data, sig, err := read(path, maxSize)
	if err != nil {
		return nil, err
	}
	return OpenDelta(path, data, sig, keys)
}

// deltaHeader parses one of the headers only a delta has.
func (p *parser) deltaHeader(key, value string) error {
	d := p.delta
	switch key {
	case "from":
		serial, sum, _ := strings.Cut(value, " ")
		n, err := strconv.ParseUint(serial, 10, 64)
		if err != nil {
			return fmt.Errorf("from %q: want the serial and the SHA-256 of the version it starts from, e.g. \"from: 2026112801 1f0c...\"", value)
		}
		d.From.Serial = n
		return decodeHex("from", strings.TrimSpace(sum), d.From.SHA256[:])
	case "sha256":
		return decodeHex(key, value, d.SHA256[:])
	case "digest":
		return decodeHex(key, value, d.Checksum[:])
	}
	return nil
}

func decodeHex(key, value string, dst []byte) error {
	if len(value) != 2*len(dst) {
		return fmt.Errorf("%s: want %d hex digits, got %d", key, 2*len(dst), len(value))
	}
	if _, err := hex.Decode(dst, []byte(value)); err != nil {
		return fmt.Errorf("%s: %q is not hexadecimal", key, value)
	}
	return nil
}

// deltaSign strips the "+ " or "- " of a delta's entry line and notes which
// it was; it reports false (after an error) for a line that has neither.
// Blank lines pass through.
func (p *parser) deltaSign(text string) (string, bool) {
	if strings.TrimSpace(text) == "" {
		return text, true
	}
	if len(text) >= 2 && (text[0] == '+' || text[0] == '-') && (text[1] == ' ' || text[1] == '\t') {
		p.removing = text[0] == '-'
		return text[2:], true
	}
	p.errorf(`a delta's entry line is "+ ENTRY" (added) or "- ENTRY" (removed)`)
	return "", false
}

// deltaEntry keeps an entry of a delta's "+" or "-" line.
func (p *parser) deltaEntry(e Entry) {
	if e.Prefix.IsValid() {
		p.errorf("address entry %s: a delta cannot change address entries; publish the whole list", p.shown(e.Pattern()))
		return
	}
	// A delta made from two versions never removes and adds one entry;
	// one that does could cancel, in the digest, the removal of an entry
	// the version it starts from does not hold, which the resolver
	// refuses but a reader of the digest alone would pass.
	if p.changed == nil {
		p.changed = map[string]int{}
	}
	line := p.line
	if p.removing {
		line = -line
	}
	text := e.Text()
	if other, ok := p.changed[text]; ok && (other < 0) != (line < 0) {
		p.errorf("%s is both removed and added (line %d): a delta names each changed entry once", p.shown(e.Pattern()), max(other, -other))
		return
	}
	p.changed[text] = line
	if p.removing {
		p.delta.Removed = append(p.delta.Removed, e)
	} else {
		p.delta.Added = append(p.delta.Added, e)
	}
}

// MakeDelta returns the delta that turns old into next: the entries of next
// that old lacks, and those of old that next lacks, counting duplicates,
// each sorted by their text. Its Checksum is left for the caller to set
// (blockindex.ChecksumOf(next.Entries)). The lists must be of one name, of
// regblock's format, and differ only in entries naming names.
func MakeDelta(old, next *List) (*Delta, error) {
	switch {
	case old.Name != next.Name:
		return nil, fmt.Errorf("%s is list %q and %s is list %q: a delta changes one list", old.File, old.Name, next.File, next.Name)
	case next.Serial <= old.Serial:
		return nil, fmt.Errorf("%s has serial %d, not above %s's %d: resolvers refuse a delta that does not raise the serial", next.File, next.Serial, old.File, old.Serial)
	case old.Hashed() != next.Hashed():
		hashed, plain := old.File, next.File
		if next.Hashed() {
			hashed, plain = next.File, old.File
		}
		return nil, fmt.Errorf("%s is hashed and %s is not: publish the whole list (or hash both)", hashed, plain)
	case old.Hashed() && string(old.Salt) != string(next.Salt):
		return nil, fmt.Errorf("%s and %s are hashed under different salts: publish the whole list, or hash the next version with regblock hash -salt %x to publish deltas", old.File, next.File, old.Salt)
	case IsRPZ(old.File) || IsRPZ(next.File):
		return nil, errors.New("an RPZ zone has no deltas: publish the whole zone")
	}
	count := map[string]int{}
	for _, e := range old.Entries {
		count[entryKey(e)]++
	}
	d := &Delta{List: &List{Header: next.Header, SHA256: next.SHA256, File: next.File}, From: Base{old.Serial, old.SHA256}}
	for _, e := range next.Entries {
		if k := entryKey(e); count[k] > 0 {
			count[k]--
		} else {
			d.Added = append(d.Added, e)
		}
	}
	for _, e := range old.Entries {
		if k := entryKey(e); count[k] > 0 {
			count[k]--
			d.Removed = append(d.Removed, e)
		}
	}
	for _, e := range append(slices.Clip(d.Added), d.Removed...) {
		if e.Prefix.IsValid() {
			return nil, fmt.Errorf("%s: address entry %s changed: a delta cannot change address entries; publish the whole list", next.File, e.Pattern())
		}
	}
	byText := func(a, b Entry) int { return cmp.Compare(a.Text(), b.Text()) }
	slices.SortStableFunc(d.Added, byText)
	slices.SortStableFunc(d.Removed, byText)
	return d, nil
}

// entryKey identifies an entry for a delta: what its line says.
func entryKey(e Entry) string { return e.Text() }

// WriteDelta writes d in the delta format: the new version's header with
// "from", "sha256" and "digest", then a "- " line for each entry removed
// and a "+ " line for each entry added. ParseDelta reads back the same.
func WriteDelta(w io.Writer, d *Delta) error {
	bw := bufio.NewWriter(w)
	bw.WriteString(deltaVersionLine + "\n")
	for _, f := range d.Fields() {
		bw.WriteString("#! " + f.Key + ": " + f.Value + "\n")
		if f.Key == "name" {
			fmt.Fprintf(bw, "#! from: %d %x\n", d.From.Serial, d.From.SHA256)
		}
	}
	fmt.Fprintf(bw, "#! sha256: %x\n#! digest: %s\n", d.SHA256, d.Checksum)
	for _, e := range d.Removed {
		bw.WriteString("- " + e.Text() + "\n")
	}
	for _, e := range d.Added {
		bw.WriteString("+ " + e.Text() + "\n")
	}
	return bw.Flush()
}

// Apply returns the entries of base with d's changes: what a list tool
// (not the resolver, whose index takes the change itself) holds after the
// delta. It fails when d removes an entry base does not hold.
func (d *Delta) Apply(base []Entry) ([]Entry, error) {
	removed := map[string]int{}
	for _, e := range d.Removed {
		removed[entryKey(e)]++
	}
	out := make([]Entry, 0, len(base)+len(d.Added))
	for _, e := range base {
		if k := entryKey(e); removed[k] > 0 {
			removed[k]--
			continue
		}
		out = append(out, e)
	}
	for _, e := range d.Removed {
		if removed[entryKey(e)] > 0 {
			return nil, fmt.Errorf("%s:%d: removes %s, which the version it starts from does not hold", d.File, e.Line, e.Pattern())
		}
	}
	return append(out, d.Added...), nil
}

// CountFrom sets the number of blocking entries of the version d makes
// from base (what d.Blocking returns): base's, less those d removes, plus
// those it adds.
func (d *Delta) CountFrom(base *List) {
	n := base.Blocking()
	for _, e := range d.Removed {
		if !e.Kind.IsException() {
			n--
		}
	}
	for _, e := range d.Added {
		if !e.Kind.IsException() {
			n++
		}
	}
	d.List.blocking = n
}

// IsDeltaData reports whether data is a delta rather than a list: its
// first line starts "#! regblock-delta".
func IsDeltaData(data []byte) bool {
	return bytes.HasPrefix(bytes.TrimPrefix(data, []byte("\uFEFF")), []byte("#! regblock-delta"))
}
