package regblock

import (
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/coredns/caddy"

	"github.com/regblock/regblock/plugin/pkg/blockindex"
	"github.com/regblock/regblock/plugin/pkg/ledger"
	"github.com/regblock/regblock/plugin/pkg/listset"
	"github.com/regblock/regblock/plugin/pkg/receipt"
)

// lists are the lists in force for one configuration of lists, keys, size
// limit, state, audit log, trust policy and receipts. Every server block that names the same
// configuration shares them, and so does the next generation of the
// Corefile: a resolver serving Do53, DoT and DoH loads each list once,
// holds one index, watches once, and counts and records each version once.
type lists struct {
	index atomic.Pointer[blockindex.Index] // what queries read
	set   *listset.Set                     // used by acquire, then only by its watcher goroutine
	audit *auditLog                        // nil without the audit option

	mu       sync.Mutex              // guards inForce
	inForce  map[string]receipt.List // what receipts say is in force
	receipts *receiptSender          // nil without the receipts option

	key      string
	cfg      config
	watching bool // guarded by shared
}

// shared holds the lists of each configuration in use. On a Corefile
// reload the new instance acquires before the old one releases, so lists
// whose configuration did not change are kept, not read again.
var shared = struct {
	*registry[*lists]
	pending []*lists // reserved by a Corefile not started yet, one entry a reservation (commitPending)
}{registry: newRegistry[*lists]()}

// listsKey identifies what the lists in force depend on.
func listsKey(cfg config) string {
	keys := make([]string, len(cfg.keys))
	for i, k := range cfg.keys {
		text, _ := k.MarshalText()
		keys[i] = string(text)
	}
	return fmt.Sprintf("%q %q %d %q %q %q %q", cfg.lists, keys, cfg.maxSize, cfg.state, cfg.audit, cfg.trust, cfg.receipts)
}

// reserveLists returns the lists of cfg, shared with the server blocks
// that hold them already, without reading anything: load does, on
// startup. Each call must be paired with a release, or, when the
// Corefile it comes from fails, with releasePending.
func reserveLists(cfg config) (*lists, error) {
	key := listsKey(cfg)
	shared.Lock()
	defer shared.Unlock()
	// Two lists configurations of one Corefile (server blocks with
	// different lists, as per-client views have) must not share a state
	// directory or an audit log: each would take the other's lists for
	// deleted, and write its marks and chain over the other's.
	for _, other := range shared.pending {
		switch {
		case other.key == key:
		case cfg.state != "" && other.cfg.state == cfg.state:
			return nil, fmt.Errorf("state %s is also the state directory of another regblock configuration (other lists or keys) in this Corefile: give each its own", cfg.state)
		case cfg.audit != "" && other.cfg.audit == cfg.audit:
			return nil, fmt.Errorf("audit %s is also the audit log of another regblock configuration (other lists or keys) in this Corefile: give each its own", cfg.audit)
		}
	}
	l, _ := shared.acquireLocked(key, func() (*lists, error) {
		l := &lists{key: key, cfg: cfg, inForce: map[string]receipt.List{}}
		empty, _ := blockindex.Build(nil)
		l.index.Store(empty)
		return l, nil
	})
	shared.pending = append(shared.pending, l)
	return l, nil
}

// load reads the lists, once for all who share them: the audit log is
// opened, the saved copies of the state directory put in force, then every
// valid list on disk, and receipts start. It runs on startup, not in
// setup, so that a Corefile reload that fails in setup (on any directive)
// leaves no trace: no ledger event, saved copy, metric or receipt. (One
// that fails later, when its servers cannot listen, has loaded; what the
// load recorded stays, and releasePending stops it.) A rejected list
// is logged and counted; the resolver starts without it rather than not at
// all.
func (l *lists) load() error {
	shared.Lock()
	defer shared.Unlock()
	if l.set != nil {
		return nil
	}
	cfg := l.cfg
	if cfg.audit != "" {
		a, err := openAudit(cfg.audit, cfg.auditBudget)
		if err != nil {
			return fmt.Errorf("audit: %w", err)
		}
		l.audit = a
	}
	l.set = listset.New(listset.Config{Lists: cfg.lists, Keys: cfg.keys, MaxSize: cfg.maxSize, State: cfg.state, Trust: cfg.trust},
		l.index.Store, events{ledger: l.ledger, track: l.track}.record)
	l.set.Restore()
	l.set.Scan()
	if l.set.Len() == 0 {
		log.Warningf("No valid list in %v: nothing is blocked yet", cfg.lists)
	}
	if cfg.receipts.url != "" {
		l.receipts = startReceipts(cfg.receipts, l.receipt)
	}
	return nil
}

// loaded returns the list set once load has run, else nil; safe on any
// goroutine.
func (l *lists) loaded() *listset.Set {
	shared.Lock()
	defer shared.Unlock()
	return l.set
}

// commitPending forgets the reservations of a Corefile once it has
// started (CoreDNS's InstanceStartupEvent, after its servers listen): they
// are released on shutdown from then on.
func commitPending(ev caddy.EventName, _ any) error {
	if ev == caddy.InstanceStartupEvent {
		shared.Lock()
		shared.pending = nil
		shared.Unlock()
	}
	return nil
}

// registerCommit has commitPending called on CoreDNS's startup events. It
// runs at each setup: a reload by SIGUSR1 purges the event hooks before it
// sets up the new Corefile, one by the reload plugin does not, and
// RegisterEventHook panics on a name registered already.
func registerCommit() {
	defer func() { recover() }() // registered already: nothing to do
	caddy.RegisterEventHook(pluginName+"-lists", commitPending)
}

// watchRestart has releasePending run if the Corefile being set up fails
// to start. CoreDNS then runs the OnRestartFailed callbacks of the
// instance still running, which registered none if its Corefile has no
// regblock: so it is registered on every instance, the running one and
// the one being set up (for the reload after this one), once each. The
// failed Corefile's lists would otherwise stay held for good, and those
// it loaded keep applying versions that no server answers from.
func watchRestart() {
	for _, inst := range caddy.Instances() {
		inst.StorageMu.Lock()
		if inst.Storage[restartWatched{}] == nil {
			inst.Storage[restartWatched{}] = true
			inst.OnRestartFailed = append(inst.OnRestartFailed, releasePending)
		}
		inst.StorageMu.Unlock()
	}
}

// restartWatched marks, in an instance's storage, that watchRestart
// registered releasePending there.
type restartWatched struct{}

// releasePending releases the lists reserved by a Corefile that did not
// start (a reload that failed in setup, or after its startup callbacks,
// when its servers could not listen): CoreDNS runs the running instance's
// OnRestartFailed then, and the failed one's shutdown callbacks never. A
// configuration it loaded stops: no more receipts or ledger events from it.
func releasePending() error {
	shared.Lock()
	pending := shared.pending
	shared.pending = nil
	shared.Unlock()
	for _, l := range pending {
		l.release()
	}
	return nil
}

// watch starts watching the lists, once for all who share them.
func (l *lists) watch() error {
	shared.Lock()
	defer shared.Unlock()
	if l.watching || !shared.heldLocked(l.key, l) || l.set == nil {
		return nil
	}
	if err := l.set.Start(); err != nil {
		return err
	}
	l.watching = true
	return nil
}

// release gives the lists up; the last holder stops the watcher and
// releases the audit log.
func (l *lists) release() {
	shared.release(l.key, func() {
		if l.set == nil {
			return // never loaded: its Corefile failed
		}
		l.set.Stop()
		if l.receipts != nil {
			l.receipts.stop()
		}
		if l.audit != nil {
			l.audit.close()
		}
		// Stopped without Removed events: the gauges of its lists go, or
		// show another configuration's version.
		l.mu.Lock()
		for name := range l.inForce {
			showList(l, name, nil)
		}
		l.mu.Unlock()
	})
}

// ledger writes a ledger event to the audit log, if there is one, and has
// a receipt sent, if receipts are on.
func (l *lists) ledger(e ledger.Event) {
	if l.audit != nil {
		l.audit.ledger(e)
	}
	if l.receipts != nil {
		l.receipts.poke()
	}
}

// track records the version of list name in force, for receipts and the
// list gauges; nil c when none is.
func (l *lists) track(name string, c *listset.Current) {
	l.mu.Lock()
	defer l.mu.Unlock()
	showList(l, name, c)
	if c == nil {
		delete(l.inForce, name)
		return
	}
	l.inForce[name] = receipt.List{Name: name, Serial: c.List.Serial, SHA256: hex.EncodeToString(c.List.SHA256[:]), Applied: c.Applied.UTC()}
}

// receipt returns what a receipt says now: the lists in force, sorted by
// name, and where the ledger stands.
func (l *lists) receipt() receipt.Receipt {
	l.mu.Lock()
	r := receipt.Receipt{Started: processStarted, Lists: make([]receipt.List, 0, len(l.inForce))}
	for _, v := range l.inForce {
		v.Blocked = blockedSinceStart.get(v.Name)
		r.Lists = append(r.Lists, v)
	}
	l.mu.Unlock()
	slices.SortFunc(r.Lists, func(a, b receipt.List) int { return strings.Compare(a.Name, b.Name) })
	if l.audit != nil {
		r.Ledger.Head, r.Ledger.Events = l.audit.chain()
	}
	return r
}
