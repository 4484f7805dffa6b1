package regblock

import (
	"encoding/hex"
	"time"

	"github.com/regblock/regblock/plugin/pkg/blocklist"
	"github.com/regblock/regblock/plugin/pkg/ledger"
	"github.com/regblock/regblock/plugin/pkg/listset"
	"github.com/regblock/regblock/plugin/pkg/minisig"
	"github.com/regblock/regblock/plugin/pkg/result"
	"github.com/regblock/regblock/plugin/pkg/trust"
)

// events turns what the list set decides into log lines an operator can act
// on, metrics, and the ledger.
type events struct {
	ledger func(ledger.Event)
	track  func(name string, c *listset.Current) // the list in force under name, for receipts and gauges; nil c when none is
	at     time.Time                             // when the change being recorded was decided
}

// record records one change of the list set, before the index holding it
// is published.
func (ev events) record(c listset.Change) {
	ev.at = c.Time
	switch c.Kind {
	case listset.Applied:
		ev.applied(c.List, c.Swap)
	case listset.Unchanged:
		countReload(c.Name, result.Unchanged)
		if c.List != nil { // the whole file in place of a chain: its entries
			ev.track(c.Name, c.List)
		}
	case listset.Refused:
		ev.refused(c.Refusal)
	case listset.Removed:
		ev.removed(c.List, c.Why)
	case listset.Moved:
		ev.moved(c.List, c.From)
	case listset.Expired:
		ev.expired(c.List)
	case listset.PolicyApplied:
		ev.policyApplied(c.Policy)
	case listset.PolicyRefused:
		ev.policyRefused(c.Path, c.Result, c.Err, c.Policy)
	case listset.PolicyExpired:
		ev.policyExpired(c.Policy)
	case listset.Waiting:
		ev.waiting(c.Path)
	case listset.Problem:
		log.Error(c.Err)
	case listset.Unsaved:
		ev.unsaved(c.N)
	}
}

func (ev events) applied(c *listset.Current, swap time.Duration) {
	l := c.List
	e := ev.event(ledger.ListApplied, l)
	e.File, e.Restored = c.Source(), c.Restored
	ev.track(l.Name, c)
	ev.ledger(e)
	if c.Restored {
		log.Infof("List %q serial %d restored from the state directory: %d blocking entries, in force since %s",
			l.Name, l.Serial, l.Blocking(), c.Applied.Format(time.RFC3339))
		return
	}
	countReload(l.Name, result.Applied)
	log.Infof("List %q serial %d applied from %s: %d blocking entries; read, verified and parsed in %v, index of all lists built and swapped in %v",
		l.Name, l.Serial, c.Source(), l.Blocking(), c.Took.Round(time.Microsecond), swap.Round(time.Microsecond))
}

func (ev events) refused(r listset.Rejection) {
	countReload(r.Label(), r.Result)
	e := ledger.Event{Time: ev.at.UTC(), Event: ledger.ListRejected, List: r.List, File: r.Path, Reason: string(r.Result), Error: r.Err.Error(), Serial: r.Serial}
	if r.InForce != nil {
		e.InForce = &r.InForce.List.Serial
		ev.ledger(e)
		log.Errorf("List %q rejected (%s): %v; serial %d from %s stays in force", r.List, r.Result, r.Err, r.InForce.List.Serial, r.InForce.Source())
		return
	}
	ev.ledger(e)
	log.Errorf("List %q rejected (%s): %v", r.List, r.Result, r.Err)
}

func (ev events) removed(c *listset.Current, why string) {
	e := ev.event(ledger.ListRemoved, c.List)
	e.Reason, e.File = why, c.Path
	ev.track(c.List.Name, nil)
	ev.ledger(e)
	log.Warningf("List %q serial %d unloaded: %s", c.List.Name, c.List.Serial, why)
}

func (ev events) moved(c *listset.Current, from string) {
	log.Infof("List %q serial %d is now read from %s (was %s); it stays in force", c.List.Name, c.List.Serial, c.Path, from)
}

func (ev events) expired(c *listset.Current) {
	ev.ledger(ev.event(ledger.ListExpired, c.List))
	log.Warningf("List %q serial %d expired at %s; it stays enforced until a newer serial arrives",
		c.List.Name, c.List.Serial, c.List.Expires.Format(time.RFC3339))
}

func (ev events) policyApplied(p *trust.Policy) {
	setTrustMetrics(p)
	countTrustReload(result.Applied)
	serial, issued := p.Serial, p.Issued
	e := ledger.Event{Time: ev.at.UTC(), Event: ledger.TrustApplied, Serial: &serial, SHA256: hex.EncodeToString(p.SHA256[:]), File: p.File, Issued: &issued}
	if !p.Expires.IsZero() {
		expires := p.Expires
		e.Expires = &expires
	}
	ev.ledger(e)
	log.Infof("Trust policy serial %d applied from %s: %d list lines, root of %d keys with threshold %d",
		p.Serial, p.File, len(p.Lists), len(p.Root.Keys), p.Root.Threshold)
}

func (ev events) policyRefused(path string, r result.Result, err error, inForce *trust.Policy) {
	countTrustReload(r)
	e := ledger.Event{Time: ev.at.UTC(), Event: ledger.TrustRejected, File: path, Reason: string(r), Error: err.Error()}
	if inForce != nil {
		e.InForce = &inForce.Serial
		ev.ledger(e)
		log.Errorf("Trust policy rejected (%s): %v; serial %d stays in force", r, err, inForce.Serial)
		return
	}
	ev.ledger(e)
	log.Errorf("Trust policy rejected (%s): %v; no policy is in force, so no list is", r, err)
}

func (ev events) policyExpired(p *trust.Policy) {
	serial := p.Serial
	ev.ledger(ledger.Event{Time: ev.at.UTC(), Event: ledger.TrustExpired, Serial: &serial, SHA256: hex.EncodeToString(p.SHA256[:])})
	log.Warningf("Trust policy serial %d expired at %s; it stays in force until a newer serial arrives", p.Serial, p.Expires.Format(time.RFC3339))
}

func (ev events) waiting(path string) {
	log.Infof("List file %s has no signature yet; waiting for %s", path, path+minisig.Suffix)
}

func (ev events) unsaved(n int) {
	stateUnsaved.Set(float64(n))
	if n == 0 {
		log.Infof("State directory: everything in force is saved")
	}
}

// event returns a ledger event of kind about list l.
func (ev events) event(kind string, l *blocklist.List) ledger.Event {
	serial, entries, issued := l.Serial, l.Blocking(), l.Issued
	e := ledger.Event{Time: ev.at.UTC(), Event: kind, List: l.Name, Serial: &serial,
		SHA256: hex.EncodeToString(l.SHA256[:]), Issued: &issued, Entries: &entries}
	if !l.Expires.IsZero() {
		expires := l.Expires
		e.Expires = &expires
	}
	return e
}
