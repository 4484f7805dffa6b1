package regblock

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/miekg/dns"

	"github.com/regblock/regblock/plugin/pkg/atomicfile"
	"github.com/regblock/regblock/plugin/pkg/blockindex"
	"github.com/regblock/regblock/plugin/pkg/blocklist"
	"github.com/regblock/regblock/plugin/pkg/ledger"
)

// clientMode says how much of a client's address a block event keeps.
type clientMode uint8

const (
	clientNone     clientMode = iota // the default: the people whose queries are blocked are often victims, not suspects
	clientTruncate                   // the /24 (IPv4) or /56 (IPv6) network
	clientFull
)

// auditQueue is how many block events may wait for the writer before new
// ones are dropped (and counted) rather than slow a query down.
const auditQueue = 4096

// Why a block event is dropped: the reason label of
// coredns_regblock_audit_dropped_total.
const (
	dropQueueFull   = "queue_full"
	dropWriteError  = "write_error"
	dropLedgerFirst = "ledger_first"
	dropBudget      = "budget"
	dropShutdown    = "shutdown"
)

// blockRecord is what the query path hands the audit writer: raw values,
// formatted off the query path.
type blockRecord struct {
	time    time.Time
	match   blockindex.Match
	qname   string
	matched string // the name match.Start indexes: qname, or a CNAME or DNAME target
	qtype   uint16
	client  net.Addr
	mode    clientMode
}

// pattern is the entry that matched, in canonical form: of a hashed list,
// by its digest (its canary, plain in the header, by name).
func (r blockRecord) pattern() string {
	m := r.match
	switch {
	case m.Prefix.IsValid():
		return m.Kind.Prefix() + blocklist.IPPrefix + m.Prefix.String()
	case m.List.Hashed() && m.Category == blocklist.CategoryCanary:
		return m.Kind.Prefix() + m.List.Canary
	case m.List.Hashed():
		return m.Kind.Prefix() + blocklist.HashPrefix + m.Digest.String()
	}
	return m.Kind.Prefix() + strings.ToLower(strings.TrimSuffix(r.matched[m.Start:], "."))
}

// qnameText is the query name as the audit log keeps it: none for a block
// by a hashed list, whose names must not be written down in plain.
func (r blockRecord) qnameText() string {
	if r.match.List.Hashed() {
		return ""
	}
	return r.qname
}

// auditLog appends events to the audit log. Block events go through a
// bounded queue to a writer goroutine, within a budget per hour; ledger
// events are written at once by the caller (never the query path),
// hash-chained, and never dropped: when the disk refuses one, it is held
// and retried (with every ledger event after it, in order) until it is
// written, and meanwhile block events give way. A line a failed write left
// half written is cut off before the next write, so the file stays whole
// lines. FILE.head keeps the hash of the last ledger line written and the
// count of ledger events, so that the chain continues across restarts and
// rotations.
type auditLog struct {
	path   string
	queue  chan blockRecord
	stop   chan struct{}
	done   chan struct{}
	refs   int // guarded by audits
	closed atomic.Bool
	budget int // block events an hour, 0 for no limit; used by the writer goroutine only
	window time.Time
	spent  int

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

// maxHeld bounds the ledger events held while the disk refuses them; past
// it a new event is not sealed (the chain stays whole) and is counted lost.
const maxHeld = 10000

// retryEvery is how often held ledger events are tried again.
const retryEvery = 2 * time.Second

// audits shares one writer per file between plugin instances: on a Corefile
// reload the new instance starts before the old one stops, and both must
// extend the same chain.
var audits = struct {
	sync.Mutex
	logs map[string]*auditLog
}{logs: map[string]*auditLog{}}

// openAudit returns the writer of the audit log at path, starting it if it
// is not running yet; budget is the block events it writes an hour (0: no
// limit), the first opener's. Each call must be paired with a close.
func openAudit(path string, budget int) (*auditLog, error) {
	audits.Lock()
	defer audits.Unlock()
	if a := audits.logs[path]; a != nil {
		a.refs++
		return a, nil
	}
	// A crash or a full disk may have left half a line at the end.
	if err := cutPartialLine(path); err != nil && !os.IsNotExist(err) {
		return nil, err
	}
	f, err := openAppend(path)
	if err != nil {
		return nil, err
	}
	head, events, err := readChain(path)
	if err != nil {
		f.Close()
		return nil, err
	}
	a := &auditLog{
		path:   path,
		queue:  make(chan blockRecord, auditQueue),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
		refs:   1,
		budget: budget,
		f:      f,
		head:   head,
		events: events,
		onDisk: heldLine{head: head, events: events},
	}
	audits.logs[path] = a
	go a.run()
	return a, nil
}

// readHead reads FILE.head: the hash of the last ledger line and the count
// of ledger events ("HASH COUNT"). A head without a count (written by an
// older regblock) counts the ledger events of FILE.
func readHead(path string) (head string, events uint64, err error) {
	data, err := os.ReadFile(path + ".head")
	if os.IsNotExist(err) {
		return "", 0, nil
	} else if err != nil {
		return "", 0, err
	}
	fields := strings.Fields(string(data))
	if len(fields) == 0 {
		return "", 0, nil
	}
	if len(fields) > 1 {
		if events, err = strconv.ParseUint(fields[1], 10, 64); err != nil {
			return "", 0, fmt.Errorf("%s.head: event count %q: %v", path, fields[1], err)
		}
		return fields[0], events, nil
	}
	if f, err := os.Open(path); err == nil {
		evs, _, _ := ledger.Check(f, path, "")
		f.Close()
		events = uint64(len(evs))
	}
	return fields[0], events, nil
}

// readChain returns where the chain of the audit log at path stands: what
// FILE.head says, moved on past the ledger lines written after it, which a
// head write the disk refused, or a crash between a line and its head,
// left out of it. A new event then chains from the last line on disk and
// the event count does not go back.
func readChain(path string) (head string, events uint64, err error) {
	head, events, err = readHead(path)
	if err != nil {
		return "", 0, err
	}
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return head, events, nil
	} else if err != nil {
		return "", 0, err
	}
	lines, last, err := ledger.CheckLines(f, path, "")
	f.Close()
	if err != nil || len(lines) == 0 || last == head {
		return head, events, nil // a broken chain is verify-ledger's to report
	}
	for i := len(lines) - 1; i >= 0; i-- {
		if lines[i].Hash == head {
			return last, events + uint64(len(lines)-1-i), nil
		}
	}
	if lines[0].Event.Prev == head { // every line of the file came after the head
		return last, events + uint64(len(lines)), nil
	}
	log.Errorf("Audit log %s: %s.head names a ledger line that is not in the file; the chain goes on from the head", path, path)
	return head, events, nil
}

func openAppend(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
}

// cutPartialLine truncates the file at path after its last newline, so that
// a line a failed write left half written does not glue itself to the next.
func cutPartialLine(path string) error {
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

// close releases the writer; the last one out drains the queue and closes
// the file.
func (a *auditLog) close() {
	audits.Lock()
	a.refs--
	last := a.refs == 0
	if last {
		delete(audits.logs, a.path)
	}
	audits.Unlock()
	if last {
		a.closed.Store(true)
		close(a.stop)
		<-a.done
	}
}

// block queues a block event; when the queue is full it drops the event and
// counts it, so that a query never waits for the disk.
func (a *auditLog) block(r blockRecord) {
	if a.closed.Load() { // a query still in flight after shutdown
		auditDropped.WithLabelValues(dropShutdown).Inc()
		return
	}
	select {
	case a.queue <- r:
	default:
		auditDropped.WithLabelValues(dropQueueFull).Inc()
	}
}

// ledger seals a ledger event onto the chain and writes it, after any
// held before it; what the disk refuses is held and retried.
func (a *auditLog) ledger(e ledger.Event) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.held) >= maxHeld {
		ledgerLost.Inc()
		log.Errorf("Audit log %s: %d ledger events wait for the disk already; ledger event %s of list %q lost", a.path, len(a.held), e.Event, e.List)
		return
	}
	line, head, err := ledger.Seal(&e, a.head)
	if err != nil {
		log.Errorf("Audit log %s: %v", a.path, err)
		return
	}
	a.head = head
	a.events++
	a.held = append(a.held, heldLine{append(line, '\n'), head, a.events})
	a.flushLocked()
}

// flushLocked writes the held ledger lines in order, cutting off a partial
// line first, and then FILE.head. It stops at the first failure, counting
// it; a.mu is held.
func (a *auditLog) flushLocked() {
	defer func() {
		n := len(a.held)
		if a.stale {
			n++ // the head, which a restart reads
		}
		ledgerHeld.Set(float64(n))
	}()
	if a.torn {
		if err := cutPartialLine(a.path); err != nil {
			a.failed("cutting off a partial line", err)
			return
		}
		a.torn = false
	}
	if len(a.held) == 0 && !a.stale {
		return
	}
	for len(a.held) > 0 {
		h := a.held[0]
		n, err := a.f.Write(h.line)
		if err != nil {
			a.torn = n > 0
			a.failed(fmt.Sprintf("%d ledger events held", len(a.held)), err)
			return
		}
		a.held = a.held[1:]
		a.onDisk, a.stale = h, true
	}
	a.held = nil
	if err := atomicfile.Write(a.path+".head", []byte(a.onDisk.head+" "+strconv.FormatUint(a.onDisk.events, 10)+"\n"), 0o640); err != nil {
		a.failed("writing the head", err)
		return
	}
	a.stale = false
}

// failed counts and logs a write error.
func (a *auditLog) failed(what string, err error) {
	auditWriteErrors.Inc()
	log.Errorf("Audit log %s: %s: %v; retrying every %v", a.path, what, err, retryEvery)
}

// healthy reports whether every ledger event, and FILE.head, is on disk.
func (a *auditLog) healthy() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.held) == 0 && !a.stale
}

// chain returns the hash of the last ledger line sealed and the count of
// ledger events, for a receipt.
func (a *auditLog) chain() (head string, events uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.head, a.events
}

// run writes queued block events, retries held ledger events, and reopens
// the file on SIGHUP (after logrotate moved it away).
func (a *auditLog) run() {
	defer close(a.done)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	retry := time.NewTicker(retryEvery)
	defer retry.Stop()
	for {
		select {
		case r := <-a.queue:
			a.write(r)
		case <-retry.C:
			a.mu.Lock()
			if len(a.held) > 0 || a.torn || a.stale {
				a.flushLocked()
			}
			a.mu.Unlock()
		case <-hup:
			a.reopen()
		case <-a.stop:
			for {
				select {
				case r := <-a.queue:
					a.write(r)
				default:
					a.mu.Lock()
					a.flushLocked()
					a.f.Close()
					a.mu.Unlock()
					return
				}
			}
		}
	}
}

// spend reports whether the budget allows one more block event this hour.
func (a *auditLog) spend(now time.Time) bool {
	if a.budget <= 0 {
		return true
	}
	if now.Sub(a.window) >= time.Hour {
		a.window, a.spent = now, 0
	}
	if a.spent >= a.budget {
		return false
	}
	a.spent++
	return true
}

func (a *auditLog) write(r blockRecord) {
	l := r.match.List
	serial := l.Serial
	e := ledger.Event{
		Time:     r.time.UTC(),
		Event:    ledger.Block,
		List:     l.Name,
		Serial:   &serial,
		Pattern:  r.pattern(),
		QName:    r.qnameText(),
		QType:    dns.TypeToString[r.qtype],
		Order:    r.match.Order,
		Category: r.match.Category,
		Client:   clientText(r.client, r.mode),
	}
	if e.QType == "" {
		e.QType = "TYPE" + strconv.Itoa(int(r.qtype))
	}
	line, err := json.Marshal(e)
	if err != nil {
		auditDropped.WithLabelValues(dropWriteError).Inc()
		return
	}
	if !a.spend(r.time) {
		auditDropped.WithLabelValues(dropBudget).Inc()
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.held) > 0 || a.torn || a.stale { // the ledger goes first
		auditDropped.WithLabelValues(dropLedgerFirst).Inc()
		return
	}
	if n, err := a.f.Write(append(line, '\n')); err != nil {
		a.torn = n > 0
		auditDropped.WithLabelValues(dropWriteError).Inc()
		auditWriteErrors.Inc()
	}
}

func (a *auditLog) reopen() {
	f, err := openAppend(a.path)
	if err != nil {
		log.Errorf("Audit log: reopening after SIGHUP: %v", err)
		return
	}
	a.mu.Lock()
	a.f.Close()
	a.f = f
	a.mu.Unlock()
	log.Infof("Audit log %s reopened", a.path)
}

// clientText formats a client address as mode allows.
func clientText(addr net.Addr, mode clientMode) string {
	if mode == clientNone || addr == nil {
		return ""
	}
	var ip netip.Addr
	switch a := addr.(type) {
	case *net.UDPAddr:
		ip, _ = netip.AddrFromSlice(a.IP)
	case *net.TCPAddr:
		ip, _ = netip.AddrFromSlice(a.IP)
	default:
		ap, err := netip.ParseAddrPort(addr.String())
		if err != nil {
			return ""
		}
		ip = ap.Addr()
	}
	ip = ip.Unmap()
	if mode == clientFull {
		return ip.String()
	}
	bits := 24
	if ip.Is6() {
		bits = 56
	}
	p, err := ip.Prefix(bits)
	if err != nil {
		return ""
	}
	return p.String()
}
