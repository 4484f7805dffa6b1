package regblock

import (
	"encoding/json"
	"errors"
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

// auditLog is the plugin's side of an audit log: block events go through a
// bounded queue to a writer goroutine, within a budget per hour, and give
// way to the ledger; ledger events are appended at once by the caller
// (never the query path). The format, the chain and holding what the disk
// refuses are the ledger package's (ledger.Writer).
type auditLog struct {
	path   string
	w      *ledger.Writer
	queue  chan blockRecord
	stop   chan struct{}
	done   chan struct{}
	closed atomic.Bool
	budget int // block events an hour, 0 for no limit; used by the writer goroutine only
	window time.Time
	spent  int
	// mu is held while a block event is written: whoever holds it stalls
	// the writer goroutine as a slow disk would (tests do).
	mu sync.Mutex
}

// retryEvery is how often held ledger events are tried again.
const retryEvery = 2 * time.Second

// audits shares one writer per file between plugin instances: on a Corefile
// reload the new instance starts before the old one stops, and both must
// extend the same chain.
var audits = newRegistry[*auditLog]()

// openAudit returns the writer of the audit log at path, starting it if it
// is not running yet; budget is the block events it writes an hour (0: no
// limit), the first opener's. Each call must be paired with a close.
func openAudit(path string, budget int) (*auditLog, error) {
	return audits.acquire(path, func() (*auditLog, error) {
		w, warning, err := ledger.Open(path, func(what string, err error) {
			auditWriteErrors.Inc()
			log.Errorf("Audit log %s: %s: %v; retrying every %v", path, what, err, retryEvery)
		})
		if err != nil {
			return nil, err
		}
		if warning != nil {
			log.Errorf("Audit log %s: %v", path, warning)
		}
		a := &auditLog{
			path:   path,
			w:      w,
			queue:  make(chan blockRecord, auditQueue),
			stop:   make(chan struct{}),
			done:   make(chan struct{}),
			budget: budget,
		}
		go a.run()
		return a, nil
	})
}

// close releases the writer; the last one out drains the queue and closes
// the file.
func (a *auditLog) close() {
	audits.release(a.path, func() {
		a.closed.Store(true)
		close(a.stop)
		<-a.done
	})
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

// ledger appends a ledger event; what the disk refuses is held and
// retried.
func (a *auditLog) ledger(e ledger.Event) {
	if err := a.w.Append(e); errors.Is(err, ledger.ErrTooManyHeld) {
		ledgerLost.Inc()
		log.Errorf("Audit log %s: %v", a.path, err)
	} else if err != nil {
		log.Errorf("Audit log %s: %v", a.path, err)
	}
	ledgerHeld.Set(float64(a.w.Held()))
}

// healthy reports whether every ledger event, and FILE.head, is on disk.
func (a *auditLog) healthy() bool { return a.w.Healthy() }

// chain returns the hash of the last ledger line sealed and the count of
// ledger events, for a receipt.
func (a *auditLog) chain() (head string, events uint64) { return a.w.Chain() }

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
			a.w.Retry()
			ledgerHeld.Set(float64(a.w.Held()))
		case <-hup:
			if err := a.w.Reopen(); err != nil {
				log.Errorf("Audit log: reopening after SIGHUP: %v", err)
			} else {
				log.Infof("Audit log %s reopened", a.path)
			}
		case <-a.stop:
			for {
				select {
				case r := <-a.queue:
					a.write(r)
				default:
					a.w.Close()
					ledgerHeld.Set(float64(a.w.Held()))
					return
				}
			}
		}
	}
}

// refund gives back what spend took for an event that was not written.
func (a *auditLog) refund() {
	if a.budget > 0 && a.spent > 0 {
		a.spent--
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
	if err := a.w.WriteLine(append(line, '\n')); err != nil {
		// The budget counts events written: a failing disk is not a spent budget.
		a.refund()
		if errors.Is(err, ledger.ErrLedgerFirst) {
			auditDropped.WithLabelValues(dropLedgerFirst).Inc()
			return
		}
		auditDropped.WithLabelValues(dropWriteError).Inc()
		auditWriteErrors.Inc()
	}
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
