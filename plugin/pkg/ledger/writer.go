package ledger

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/regblock/regblock/plugin/pkg/atomicfile"
	"github.com/regblock/regblock/plugin/pkg/regularfile"
)

// Writer appends to an audit log. Ledger events are sealed onto the chain
// and never dropped: when the disk refuses one, it is held and retried
// (with every ledger event after it, in order) until it is written, and
// meanwhile other lines give way. A line a failed write left half written
// is cut off before the next write, so the file stays whole lines.
// FILE.head keeps the hash of the last ledger line written and the count
// of ledger events, so that the chain continues across restarts and
// rotations. A Writer is safe for concurrent use.
type Writer struct {
	path   string
	failed func(what string, err error)

	mu     sync.Mutex // guards the fields below
	f      *os.File
	head   string // hash of the last ledger line sealed, written or held
	events uint64 // ledger events sealed
	held   []heldLine
	torn   bool     // a write failed part way: the file may end in a partial line
	onDisk heldLine // the last ledger line written: what FILE.head is to say
	stale  bool     // FILE.head does not say it yet: its write failed
}

// heldLine is a sealed ledger line (with its newline) and where the chain
// stands once it is written.
type heldLine struct {
	line   []byte
	head   string
	events uint64
}

// MaxHeld bounds the ledger events held while the disk refuses them; past
// it a new event is not sealed (the chain stays whole) and Append returns
// ErrTooManyHeld.
const MaxHeld = 10000

var (
	// ErrTooManyHeld is Append's error when MaxHeld events wait already:
	// the event is lost.
	ErrTooManyHeld = errors.New("too many ledger events wait for the disk")
	// ErrLedgerFirst is WriteLine's error while ledger lines wait: the
	// ledger goes first, the line is not written.
	ErrLedgerFirst = errors.New("ledger events wait for the disk")
)

// Open opens the audit log at path for appending, creating it, and reads
// where its chain stands (ReadChain); a partial line a crash or a full disk
// left at its end is cut off first. failed is called for each write the
// disk refuses (what was being done, and the error; the write is retried
// by Retry). A warning, when not nil, says that FILE.head names no line of
// the file: the chain goes on from the head.
func Open(path string, failed func(what string, err error)) (w *Writer, warning, err error) {
	if err := CutPartialLine(path); err != nil && !os.IsNotExist(err) {
		return nil, nil, err
	}
	f, err := openAppend(path)
	if err != nil {
		return nil, nil, err
	}
	head, events, err := ReadChain(path)
	if errors.Is(err, ErrHeadNotInFile) || errors.Is(err, ErrHeadCount) {
		warning = err
	} else if err != nil {
		f.Close()
		return nil, nil, err
	}
	return &Writer{path: path, failed: failed, f: f, head: head, events: events, onDisk: heldLine{head: head, events: events}}, warning, nil
}

func openAppend(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
}

// Append seals e onto the chain and writes it, after any held before it;
// what the disk refuses is held and retried. It fails only when e cannot
// be sealed, or MaxHeld events wait already (ErrTooManyHeld): e is lost.
func (w *Writer) Append(e Event) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.held) >= MaxHeld {
		return fmt.Errorf("%w (%d); ledger event %s of list %q lost", ErrTooManyHeld, len(w.held), e.Event, e.List)
	}
	line, head, err := Seal(&e, w.head)
	if err != nil {
		return err
	}
	w.head = head
	w.events++
	w.held = append(w.held, heldLine{append(line, '\n'), head, w.events})
	w.flushLocked()
	return nil
}

// WriteLine writes a line that is not a ledger event (a block event), with
// its newline, unless ledger lines wait for the disk (ErrLedgerFirst).
func (w *Writer) WriteLine(line []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.pendingLocked() {
		return ErrLedgerFirst
	}
	n, err := w.f.Write(line)
	if err != nil {
		w.torn = n > 0
	}
	return err
}

// Retry writes what waits for the disk, if anything does.
func (w *Writer) Retry() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.pendingLocked() {
		w.flushLocked()
	}
}

func (w *Writer) pendingLocked() bool { return len(w.held) > 0 || w.torn || w.stale }

// Held returns how many writes a restart would miss: the ledger events
// held, and the head when its write failed.
func (w *Writer) Held() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := len(w.held)
	if w.stale {
		n++
	}
	return n
}

// Healthy reports whether every ledger event, and FILE.head, is on disk.
func (w *Writer) Healthy() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.held) == 0 && !w.stale
}

// Chain returns the hash of the last ledger line sealed and the count of
// ledger events, for a receipt.
func (w *Writer) Chain() (head string, events uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.head, w.events
}

// Reopen opens the file at the path again (after logrotate moved it away).
func (w *Writer) Reopen() error {
	f, err := openAppend(w.path)
	if err != nil {
		return err
	}
	w.mu.Lock()
	w.f.Close()
	w.f = f
	w.mu.Unlock()
	return nil
}

// Close writes what waits, once more, and closes the file.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.flushLocked()
	return w.f.Close()
}

// flushLocked writes the held ledger lines in order, cutting off a partial
// line first, and then FILE.head. It stops at the first failure; w.mu is
// held.
func (w *Writer) flushLocked() {
	if w.torn {
		if err := CutPartialLine(w.path); err != nil {
			w.failed("cutting off a partial line", err)
			return
		}
		w.torn = false
	}
	if len(w.held) == 0 && !w.stale {
		return
	}
	for len(w.held) > 0 {
		h := w.held[0]
		n, err := w.f.Write(h.line)
		if err != nil {
			w.torn = n > 0
			w.failed(fmt.Sprintf("%d ledger events held", len(w.held)), err)
			return
		}
		w.held = w.held[1:]
		w.onDisk, w.stale = h, true
	}
	w.held = nil
	if err := WriteHead(w.path, w.onDisk.head, w.onDisk.events); err != nil {
		w.failed("writing the head", err)
		return
	}
	w.stale = false
}

// WriteHead writes FILE.head for the audit log at path: the hash of its
// last ledger line and the count of ledger events since the chain began,
// as "HASH COUNT".
func WriteHead(path, head string, events uint64) error {
	return atomicfile.Write(path+".head", []byte(head+" "+strconv.FormatUint(events, 10)+"\n"), 0o640)
}

// ReadHead reads FILE.head of the audit log at path. A head without a
// count (written by an older regblock) has counted false. A missing head
// is an error wrapping os.ErrNotExist, an empty one says nothing, and one
// whose count does not parse is an error wrapping ErrHeadCount that still
// returns the hash.
func ReadHead(path string) (head string, events uint64, counted bool, err error) {
	data, err := regularfile.Read(path+".head", maxHead)
	if err != nil {
		return "", 0, false, err
	}
	fields := strings.Fields(string(data))
	switch len(fields) {
	case 0:
		return "", 0, true, nil
	case 1:
		return fields[0], 0, false, nil
	}
	if events, err = strconv.ParseUint(fields[1], 10, 64); err != nil {
		return fields[0], 0, false, fmt.Errorf("%s.head: %w %q: %v", path, ErrHeadCount, fields[1], err)
	}
	return fields[0], events, true, nil
}

// maxHead bounds FILE.head: a hash and a count.
const maxHead = 4 << 10

// ErrHeadCount is wrapped by ReadHead's error for a count that does not
// parse.
var ErrHeadCount = errors.New("event count")

// ErrHeadNotInFile is wrapped by ReadChain's error for a head that names no
// ledger line of the file; it still returns the head, from which the chain
// goes on.
var ErrHeadNotInFile = errors.New("names a ledger line that is not in the file; the chain goes on from the head")

// ReadChain returns where the chain of the audit log at path stands: what
// FILE.head says, moved on past the ledger lines written after it, which a
// head write the disk refused, or a crash between a line and its head,
// left out of it. A new event then chains from the last line on disk and
// the event count does not go back. A head without a count, or with one
// that does not parse, counts the ledger events of the file; the latter is
// returned, with the head, as an error wrapping ErrHeadCount.
func ReadChain(path string) (head string, events uint64, err error) {
	head, events, counted, err := ReadHead(path)
	var damaged error
	switch {
	case errors.Is(err, os.ErrNotExist):
		head, events, counted, err = "", 0, true, nil
	case errors.Is(err, ErrHeadCount):
		damaged, err = err, nil
	}
	if err != nil {
		return "", 0, err
	}
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return head, events, damaged
	} else if err != nil {
		return "", 0, err
	}
	lines, last, err := CheckLines(f, path, "")
	f.Close()
	if !counted {
		events = uint64(len(lines))
	}
	if err != nil || len(lines) == 0 || last == head {
		return head, events, damaged // a broken chain is verify-ledger's to report
	}
	for i := len(lines) - 1; i >= 0; i-- {
		if lines[i].Hash == head {
			return last, events + uint64(len(lines)-1-i), damaged
		}
	}
	if lines[0].Event.Prev == head { // every line of the file came after the head
		return last, events + uint64(len(lines)), damaged
	}
	return head, events, fmt.Errorf("%s.head %w", path, ErrHeadNotInFile)
}

// CutPartialLine truncates the file at path after its last newline, so
// that a line a failed write left half written does not glue itself to
// the next.
func CutPartialLine(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || fi.Size() == 0 {
		return err
	}
	buf := make([]byte, 4096)
	for end := fi.Size(); end > 0; {
		start := max(0, end-int64(len(buf)))
		n, err := f.ReadAt(buf[:end-start], start)
		if err != nil && n < int(end-start) {
			return err
		}
		if i := bytes.LastIndexByte(buf[:n], '\n'); i >= 0 {
			if start+int64(i)+1 == fi.Size() {
				return nil // ends whole
			}
			return f.Truncate(start + int64(i) + 1)
		}
		end = start
	}
	return f.Truncate(0)
}
