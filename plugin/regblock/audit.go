package regblock

import (
	"encoding/json"
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

// blockRecord is what the query path hands the audit writer: raw values,
// formatted off the query path.
// pattern is the entry that matched, in canonical form.
func (r blockRecord) pattern() string {
	if r.match.Prefix.IsValid() {
		return r.match.Kind.Prefix() + blocklist.IPPrefix + r.match.Prefix.String()
	}
	return r.match.Kind.Prefix() + strings.ToLower(strings.TrimSuffix(r.matched[r.match.Start:], "."))
}

type blockRecord struct {
	time    time.Time
	match   blockindex.Match
	qname   string
	matched string // the name match.Start indexes: qname, or a CNAME or DNAME target
	qtype   uint16
	client  net.Addr
	mode    clientMode
}

// auditLog appends events to the audit log. Block events go through a
// bounded queue to a writer goroutine; ledger events are written at once by
// the caller (never the query path), hash-chained, and never dropped. The
// hash of the last ledger line is also kept in FILE.head, so that the chain
// continues across restarts and rotations.
type auditLog struct {
	path   string
	queue  chan blockRecord
	stop   chan struct{}
	done   chan struct{}
	refs   int // guarded by audits
	closed atomic.Bool

	mu   sync.Mutex // guards f and head
	f    *os.File
	head string
}

// audits shares one writer per file between plugin instances: on a Corefile
// reload the new instance starts before the old one stops, and both must
// extend the same chain.
var audits = struct {
	sync.Mutex
	logs map[string]*auditLog
}{logs: map[string]*auditLog{}}

// openAudit returns the writer of the audit log at path, starting it if it
// is not running yet. Each call must be paired with a close.
func openAudit(path string) (*auditLog, error) {
	audits.Lock()
	defer audits.Unlock()
	if a := audits.logs[path]; a != nil {
		a.refs++
		return a, nil
	}
	f, err := openAppend(path)
	if err != nil {
		return nil, err
	}
	head, err := os.ReadFile(path + ".head")
	if err != nil && !os.IsNotExist(err) {
		f.Close()
		return nil, err
	}
	a := &auditLog{
		path:  path,
		queue: make(chan blockRecord, auditQueue),
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
		refs:  1,
		f:     f,
		head:  strings.TrimSpace(string(head)),
	}
	audits.logs[path] = a
	go a.run()
	return a, nil
}

func openAppend(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
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
		auditDropped.Inc()
		return
	}
	select {
	case a.queue <- r:
	default:
		auditDropped.Inc()
	}
}

// ledger writes a ledger event, chained to the previous one.
func (a *auditLog) ledger(e ledger.Event) {
	a.mu.Lock()
	defer a.mu.Unlock()
	line, head, err := ledger.Seal(&e, a.head)
	if err != nil {
		log.Errorf("Audit log %s: %v", a.path, err)
		return
	}
	if _, err := a.f.Write(append(line, '\n')); err != nil {
		log.Errorf("Audit log %s: ledger event %s of list %q not written: %v", a.path, e.Event, e.List, err)
		return
	}
	a.head = head
	if err := atomicfile.Write(a.path+".head", []byte(head+"\n"), 0o640); err != nil {
		log.Errorf("Audit log %s: %v", a.path, err)
	}
}

// run writes queued block events, and reopens the file on SIGHUP (after
// logrotate moved it away).
func (a *auditLog) run() {
	defer close(a.done)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case r := <-a.queue:
			a.write(r)
		case <-hup:
			a.reopen()
		case <-a.stop:
			for {
				select {
				case r := <-a.queue:
					a.write(r)
				default:
					a.mu.Lock()
					a.f.Close()
					a.mu.Unlock()
					return
				}
			}
		}
	}
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
		QName:    r.qname,
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
		return
	}
	a.mu.Lock()
	_, err = a.f.Write(append(line, '\n'))
	a.mu.Unlock()
	if err != nil {
		auditDropped.Inc()
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
