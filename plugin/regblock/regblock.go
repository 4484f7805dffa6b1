// Package regblock is a CoreDNS plugin that enforces regulator-issued,
// signed DNS blocklists: listed names get the address of a legal notice page
// (or NXDOMAIN) and an Extended DNS Error that says who ordered the block.
package regblock

import (
	"context"
	"sync/atomic"

	"github.com/coredns/coredns/plugin"

	"github.com/miekg/dns"

	"github.com/regblock/regblock/plugin/pkg/blockindex"
)

// Regblock is the plugin handler.
type Regblock struct {
	Next plugin.Handler

	cfg     config
	index   atomic.Pointer[blockindex.Index] // the lists in force
	answers answers

	store *store // used by setup, then only by the watcher goroutine
	stop  chan struct{}
	done  chan struct{}
}

// newRegblock puts in force the saved copies of the state directory, then
// every valid list on disk. A list that is rejected is logged and counted;
// the resolver starts without it rather than not at all.
func newRegblock(cfg config) *Regblock {
	rb := &Regblock{cfg: cfg, answers: newAnswers(cfg.notice, cfg.ttl)}
	empty, _ := blockindex.Build(nil)
	rb.index.Store(empty)
	rb.store = newStore(cfg, rb.index.Store)
	rb.store.restore()
	rb.store.scan()
	if len(rb.store.inForce) == 0 {
		log.Warningf("No valid list in %v: nothing is blocked yet", cfg.lists)
	}
	return rb
}

// ServeDNS implements the plugin.Handler interface.
func (rb *Regblock) ServeDNS(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	if r.Opcode != dns.OpcodeQuery || len(r.Question) != 1 {
		return plugin.NextOrFailure(rb.Name(), rb.Next, ctx, w, r)
	}
	// The question name as received: Lookup folds case and escapes itself,
	// without the allocation request.Request.Name() costs.
	m, ok := rb.index.Load().Lookup(r.Question[0].Name)
	if !ok {
		return plugin.NextOrFailure(rb.Name(), rb.Next, ctx, w, r)
	}
	w.WriteMsg(rb.answers.block(r, m))
	return dns.RcodeSuccess, nil
}

// Name implements the plugin.Handler interface.
func (rb *Regblock) Name() string { return pluginName }

// Ready implements the ready.Readiness interface: ready once a verified list
// is in force.
func (rb *Regblock) Ready() bool { return len(rb.index.Load().Lists()) > 0 }
