package regblock

import (
	"encoding/hex"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coredns/coredns/plugin"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/regblock/regblock/plugin/pkg/blockindex"
	"github.com/regblock/regblock/plugin/pkg/listset"
	"github.com/regblock/regblock/plugin/pkg/result"
	"github.com/regblock/regblock/plugin/pkg/trust"
	buildversion "github.com/regblock/regblock/plugin/pkg/version"
)

var (
	queriesTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: pluginName,
		Name:      "queries_total",
		Help:      "Counter of queries that regblock checked against the lists.",
	}, []string{"server"})

	blockedTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: pluginName,
		Name:      "blocked_total",
		Help:      "Counter of queries answered with a block, by list, category and query type.",
	}, []string{"server", "list", "category", "type"})

	auditDropped = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: pluginName,
		Name:      "audit_dropped_total",
		Help:      "Counter of block events the audit log dropped, by reason: queue_full (the disk too slow), write_error, ledger_first (ledger events wait for the disk), budget (audit_budget spent this hour), shutdown.",
	}, []string{"reason"})

	auditWriteErrors = promauto.NewCounter(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: pluginName,
		Name:      "audit_write_errors_total",
		Help:      "Counter of writes to the audit log that failed (a full disk, an I/O error).",
	})

	stateUnsaved = promauto.NewGauge(prometheus.GaugeOpts{
		Namespace: plugin.Namespace,
		Subsystem: pluginName,
		Name:      "state_unsaved",
		Help:      "High-water marks, copies of versions in force and trust policies the state directory refused, retried; until they are kept a restart could enforce an older version, and the resolver is not ready.",
	})

	ledgerHeld = promauto.NewGauge(prometheus.GaugeOpts{
		Namespace: plugin.Namespace,
		Subsystem: pluginName,
		Name:      "audit_ledger_held",
		Help:      "Ledger events the disk refused, held in memory and retried, plus one while the audit log's .head is not written; the resolver is not ready meanwhile.",
	})

	ledgerLost = promauto.NewCounter(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: pluginName,
		Name:      "audit_ledger_lost_total",
		Help:      "Counter of ledger events not recorded because too many were held already.",
	})

	receiptsSent = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: pluginName,
		Name:      "receipts_total",
		Help:      "Counter of enforcement receipts sent to the regulator, by result (sent, failed).",
	}, []string{"result"})

	receiptLastSent = promauto.NewGauge(prometheus.GaugeOpts{
		Namespace: plugin.Namespace,
		Subsystem: pluginName,
		Name:      "receipt_last_sent_timestamp_seconds",
		Help:      "When the last enforcement receipt was accepted by the regulator; 0 before the first.",
	})

	reloadsTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: pluginName,
		Name:      "reloads_total",
		Help:      "Counter of list versions read, by list and result (applied, unchanged, or why it was rejected).",
	}, []string{"list", "result"})

	trustReloads = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: pluginName,
		Name:      "trust_reloads_total",
		Help:      "Counter of trust policy versions read, by result (applied, or why it was rejected).",
	}, []string{"result"})

	trustSerial = promauto.NewGauge(prometheus.GaugeOpts{
		Namespace: plugin.Namespace,
		Subsystem: pluginName,
		Name:      "trust_serial",
		Help:      "Serial of the trust policy in force; 0 without one.",
	})
	trustExpiry = promauto.NewGauge(prometheus.GaugeOpts{
		Namespace: plugin.Namespace,
		Subsystem: pluginName,
		Name:      "trust_expiry_timestamp_seconds",
		Help:      "Expiry time of the trust policy in force, from its signed header, in seconds since the epoch; 0 when it does not expire.",
	})

	buildInfo = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: plugin.Namespace,
		Subsystem: pluginName,
		Name:      "build_info",
		Help:      "A metric with a constant '1' value labelled by the version of regblock and the Go version it was built with.",
	}, []string{"version", "goversion"})

	listInfo = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: plugin.Namespace,
		Subsystem: pluginName,
		Name:      "list_info",
		Help:      "1, labelled with the SHA-256 of the whole file of the list in force (a version made by deltas: the one its last delta names).",
	}, []string{"list", "sha256"})

	listEntries = newListGauge("list_entries", "Number of blocking entries (exceptions excluded) of the list in force.")
	listSerial  = newListGauge("list_serial", "Serial of the list in force.")
	listIssued  = newListGauge("list_issued_timestamp_seconds", "Issue time of the list in force, from its signed header, in seconds since the epoch.")
	listApplied = newListGauge("list_applied_timestamp_seconds", "Time the list in force was applied, in seconds since the epoch.")
	listExpiry  = newListGauge("list_expiry_timestamp_seconds", "Expiry time of the list in force, from its signed header, in seconds since the epoch; absent when it does not expire.")
	listDelay   = newListGauge("list_enforcement_delay_seconds", "Seconds from the issue time of the list in force to the time it was applied.")
)

func newListGauge(name, help string) *prometheus.GaugeVec {
	return promauto.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: plugin.Namespace,
		Subsystem: pluginName,
		Name:      name,
		Help:      help,
	}, []string{"list"})
}

func init() { buildInfo.WithLabelValues(buildversion.String(), runtime.Version()).Set(1) }

// listGauges knows which version of each list name every configuration
// of lists in use enforces. The list gauges are labelled by list name
// alone, and two configurations (server blocks with other lists) may each
// enforce a list of one name: when one gives the name up (the list
// removed, or the configuration dropped by a Corefile reload), the gauges
// show the other's version rather than disappear.
var listGauges = struct {
	sync.Mutex
	by map[string]map[*lists]*listset.Current
}{by: map[string]map[*lists]*listset.Current{}}

// showList records that l enforces c under name, or no longer enforces a
// list of that name when c is nil, and sets the gauges of name from the
// version just put in force, from another configuration's, or takes them
// down when none enforces it.
func showList(l *lists, name string, c *listset.Current) {
	g := &listGauges
	g.Lock()
	defer g.Unlock()
	if c != nil {
		if g.by[name] == nil {
			g.by[name] = map[*lists]*listset.Current{}
		}
		g.by[name][l] = c
		setListMetrics(c)
		return
	}
	delete(g.by[name], l)
	for _, other := range g.by[name] {
		setListMetrics(other)
		return
	}
	delete(g.by, name)
	deleteListMetrics(name)
}

// setListMetrics sets the gauges of a list that was just put in force.
func setListMetrics(c *listset.Current) {
	l := c.List
	listEntries.WithLabelValues(l.Name).Set(float64(l.Blocking()))
	listSerial.WithLabelValues(l.Name).Set(float64(l.Serial))
	listInfo.DeletePartialMatch(prometheus.Labels{"list": l.Name})
	listInfo.WithLabelValues(l.Name, hex.EncodeToString(l.SHA256[:])).Set(1)
	listIssued.WithLabelValues(l.Name).Set(float64(l.Issued.Unix()))
	listApplied.WithLabelValues(l.Name).Set(float64(c.Applied.Unix()))
	listDelay.WithLabelValues(l.Name).Set(c.Applied.Sub(l.Issued).Seconds())
	if l.Expires.IsZero() {
		listExpiry.DeleteLabelValues(l.Name)
	} else {
		listExpiry.WithLabelValues(l.Name).Set(float64(l.Expires.Unix()))
	}
}

// deleteListMetrics removes the gauges of a list no longer in force.
func deleteListMetrics(name string) {
	for _, g := range []*prometheus.GaugeVec{listEntries, listSerial, listIssued, listApplied, listExpiry, listDelay} {
		g.DeleteLabelValues(name)
	}
	listInfo.DeletePartialMatch(prometheus.Labels{"list": name})
}

func countReload(list string, r result.Result) { reloadsTotal.WithLabelValues(list, string(r)).Inc() }

func countTrustReload(r result.Result) { trustReloads.WithLabelValues(string(r)).Inc() }

// setTrustMetrics sets the gauges of the trust policy just put in force.
func setTrustMetrics(p *trust.Policy) {
	trustSerial.Set(float64(p.Serial))
	if p.Expires.IsZero() {
		trustExpiry.Set(0)
	} else {
		trustExpiry.Set(float64(p.Expires.Unix()))
	}
}

// serverCounters caches the queries_total counter of each server, so that
// the per-query cost is a comparison with the first server asked for (a
// server block mostly has one), else a lock-free map read rather than
// hashing label values. first is written once: queries of several servers
// on several cores do not take turns writing it.
type serverCounters struct {
	first atomic.Pointer[serverCounter]
	m     sync.Map // server -> *serverCounter
}

type serverCounter struct {
	server  string
	counter prometheus.Counter
}

func (c *serverCounters) get(server string) prometheus.Counter {
	if first := c.first.Load(); first != nil && first.server == server {
		return first.counter
	}
	return c.load(server)
}

// load is get for a server other than the first.
func (c *serverCounters) load(server string) prometheus.Counter {
	v, ok := c.m.Load(server)
	if !ok {
		v, _ = c.m.LoadOrStore(server, &serverCounter{server, queriesTotal.WithLabelValues(server)})
	}
	sc := v.(*serverCounter)
	c.first.CompareAndSwap(nil, sc)
	return sc.counter
}

// countBlock counts a block answer.
func countBlock(server string, m blockindex.Match, qtype uint16) {
	category := m.Category
	if category == "" {
		category = "none"
	}
	blockedTotal.WithLabelValues(server, m.List.Name, category, qtypeLabel(qtype)).Inc()
	blockedSinceStart.add(m.List.Name)
}

// processStarted is when this process started: receipts say so, for the
// counts they carry run from then.
var processStarted = time.Now().UTC().Truncate(time.Millisecond)

// blockedSinceStart counts the queries each list blocked since the process
// started, whatever the server block, for receipts: one number per list
// name, as blocked_total summed over its other labels.
var blockedSinceStart listCounts

type listCounts struct{ m sync.Map } // list name -> *atomic.Uint64

func (c *listCounts) add(list string) {
	v, ok := c.m.Load(list)
	if !ok {
		v, _ = c.m.LoadOrStore(list, new(atomic.Uint64))
	}
	v.(*atomic.Uint64).Add(1)
}

func (c *listCounts) get(list string) uint64 {
	if v, ok := c.m.Load(list); ok {
		return v.(*atomic.Uint64).Load()
	}
	return 0
}

// qtypeLabel bounds the type label: the types browsers and mail ask for by
// name, everything else as "other".
func qtypeLabel(qtype uint16) string {
	switch qtype {
	case dns.TypeA, dns.TypeAAAA, dns.TypeHTTPS, dns.TypeSVCB, dns.TypeCNAME, dns.TypeMX, dns.TypeTXT,
		dns.TypeNS, dns.TypeSOA, dns.TypePTR, dns.TypeSRV, dns.TypeCAA, dns.TypeANY:
		return dns.TypeToString[qtype]
	}
	return "other"
}

// Both results of receipts_total, and every reason of audit_dropped_total,
// exist from the start, at 0, so that rates and alerts see the first one.
func init() {
	receiptsSent.WithLabelValues("sent")
	receiptsSent.WithLabelValues("failed")
	for _, reason := range []string{dropQueueFull, dropWriteError, dropLedgerFirst, dropBudget, dropShutdown} {
		auditDropped.WithLabelValues(reason)
	}
}
