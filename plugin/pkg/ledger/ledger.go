// Package ledger is the format of regblock's audit log: JSON Lines, one
// event a line. The list events (applied, rejected, expired, removed) form
// the enforcement ledger and are hash-chained: each carries in "prev" the
// SHA-256 of the previous ledger line's exact bytes, so that a removed or
// edited line shows. Block events are not chained.
package ledger

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// Event kinds.
const (
	Block        = "block"
	ListApplied  = "list_applied"
	ListRejected = "list_rejected"
	ListExpired  = "list_expired"
	ListRemoved  = "list_removed"
	// The trust policy's versions (the list field is empty).
	TrustApplied  = "trust_applied"
	TrustRejected = "trust_rejected"
	TrustExpired  = "trust_expired"
)

// Event is one line of the audit log. Fields that do not apply to a kind are
// left out of its line.
type Event struct {
	Time  time.Time `json:"time"`
	Event string    `json:"event"`
	List  string    `json:"list,omitempty"`
	// Serial is the list's serial: of the version applied, expired, removed,
	// rejected (when it could be read) or blocking.
	Serial *uint64 `json:"serial,omitempty"`

	// List events.
	SHA256   string     `json:"sha256,omitempty"` // of the list file's bytes
	File     string     `json:"file,omitempty"`
	Issued   *time.Time `json:"issued,omitempty"`
	Expires  *time.Time `json:"expires,omitempty"`
	Entries  *int       `json:"entries,omitempty"`
	Restored bool       `json:"restored,omitempty"` // applied from the state directory at startup
	Reason   string     `json:"reason,omitempty"`   // why a version was rejected or a list removed
	Error    string     `json:"error,omitempty"`
	InForce  *uint64    `json:"in_force,omitempty"` // serial that stays in force after a rejection

	// Block events.
	Pattern  string `json:"pattern,omitempty"`
	QName    string `json:"qname,omitempty"`
	QType    string `json:"qtype,omitempty"`
	Order    string `json:"order,omitempty"`
	Category string `json:"category,omitempty"`
	Client   string `json:"client,omitempty"`

	// Prev is the SHA-256 of the previous ledger line, on ledger events.
	Prev string `json:"prev,omitempty"`
}

// isLedger reports whether events of kind are chained.
func isLedger(kind string) bool {
	switch kind {
	case ListApplied, ListRejected, ListExpired, ListRemoved, TrustApplied, TrustRejected, TrustExpired:
		return true
	}
	return false
}

// Hash returns the hex SHA-256 of a ledger line, without its newline.
func Hash(line []byte) string {
	sum := sha256.Sum256(line)
	return hex.EncodeToString(sum[:])
}

// Seal sets e.Prev to head, the hash of the previous ledger line, and
// returns e's line (without a newline) and its hash, the new head.
func Seal(e *Event, head string) (line []byte, newHead string, err error) {
	e.Prev = head
	line, err = json.Marshal(e)
	if err != nil {
		return nil, head, err
	}
	return line, Hash(line), nil
}

// ErrBroken is wrapped by the errors Check returns for a broken chain.
var ErrBroken = errors.New("ledger chain broken")

// Check reads an audit log from r, named name in errors, and checks the
// ledger chain. head is the hash the first ledger line must carry in prev,
// "" to accept whatever it carries (the start of the chain, or a file read
// on its own). It returns the ledger events in order and the hash of the
// last ledger line; errors name the file and line.
func Check(r io.Reader, name, head string) ([]Event, string, error) {
	lines, head, err := CheckLines(r, name, head)
	events := make([]Event, len(lines))
	for i, l := range lines {
		events[i] = l.Event
	}
	return events, head, err
}

// Line is a ledger line: its event, its hash, and where it is.
type Line struct {
	Event Event
	Hash  string
	File  string
	Line  int
}

// CheckLines is Check, returning each ledger line's hash and place too.
func CheckLines(r io.Reader, name, head string) ([]Line, string, error) {
	var lines []Line
	last := &lastByte{r: r}
	sc := bufio.NewScanner(last)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	first := head == ""
	var torn error // a line that does not parse: torn if it is the last, without its newline
	for n := 1; sc.Scan(); n++ {
		if torn != nil {
			return lines, head, torn
		}
		line := sc.Bytes()
		if len(line) == 0 {
			continue
		}
		var e Event
		if err := json.Unmarshal(line, &e); err != nil {
			torn = fmt.Errorf("%s:%d: %w: not an audit event: %v", name, n, ErrBroken, err)
			continue
		}
		if !isLedger(e.Event) {
			continue
		}
		if !first && e.Prev != head {
			return lines, head, fmt.Errorf("%s:%d: %w: this line follows a ledger line hashing to %.12s…, but names %.12s… as its predecessor: a ledger line before it was removed or edited",
				name, n, ErrBroken, head, e.Prev)
		}
		first = false
		head = Hash(line)
		lines = append(lines, Line{Event: e, Hash: head, File: name, Line: n})
	}
	if err := sc.Err(); err != nil {
		return lines, head, fmt.Errorf("%s: %w", name, err)
	}
	if torn != nil && last.b == '\n' {
		return lines, head, torn
	}
	// A last line without its newline that does not parse was cut short by
	// a full disk or a crash (a block event: the writer cuts a torn line off
	// before it writes a ledger line, and a rotated file keeps it): it is
	// no ledger line.
	return lines, head, nil
}

// lastByte remembers the last byte read through it.
type lastByte struct {
	r io.Reader
	b byte
}

func (l *lastByte) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	if n > 0 {
		l.b = p[n-1]
	}
	return n, err
}
