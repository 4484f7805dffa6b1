// Package regblock is a CoreDNS plugin that enforces regulator-issued,
// signed DNS blocklists: listed names get the address of a legal notice page
// (or NXDOMAIN) and an Extended DNS Error that says who ordered the block.
package regblock

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/coredns/coredns/plugin"

	"github.com/miekg/dns"

	"github.com/regblock/regblock/plugin/pkg/blockindex"
	"github.com/regblock/regblock/plugin/pkg/blocklist"
)

// Regblock is the plugin handler.
type Regblock struct {
	Next plugin.Handler

	cfg     config
	index   atomic.Pointer[blockindex.Index] // the lists in force
	answers answers
}

func newRegblock(cfg config) (*Regblock, error) {
	lists, err := loadLists(cfg)
	if err != nil {
		return nil, err
	}
	ix, err := blockindex.Build(lists)
	if err != nil {
		return nil, err
	}
	rb := &Regblock{cfg: cfg, answers: newAnswers(cfg.notice, cfg.ttl)}
	rb.index.Store(ix)

	now := time.Now()
	for _, l := range ix.Lists() {
		log.Infof("List %q serial %d applied from %s: %d blocking entries", l.Name, l.Serial, l.File, l.Blocking())
		if l.Expired(now) {
			log.Warningf("List %q serial %d expired at %s; it stays enforced until a newer serial arrives", l.Name, l.Serial, l.Expires.Format(time.RFC3339))
		}
	}
	if len(lists) == 0 {
		log.Warningf("No lists found in %v: nothing is blocked", cfg.lists)
	}
	return rb, nil
}

// loadLists reads, verifies and parses every configured list: the files
// named, and the *.list files in the directories named.
func loadLists(cfg config) ([]*blocklist.List, error) {
	var paths []string
	for _, path := range cfg.lists {
		fi, err := os.Stat(path)
		if err != nil {
			return nil, err
		}
		if !fi.IsDir() {
			paths = append(paths, path)
			continue
		}
		dir, err := os.ReadDir(path)
		if err != nil {
			return nil, err
		}
		for _, e := range dir {
			if !e.IsDir() && blocklist.IsList(e.Name()) {
				paths = append(paths, filepath.Join(path, e.Name()))
			}
		}
	}
	var lists []*blocklist.List
	for _, path := range paths {
		l, err := blocklist.Load(path, cfg.keys, cfg.maxSize)
		if err != nil {
			return nil, fmt.Errorf("list rejected: %w", err)
		}
		lists = append(lists, l)
	}
	return lists, nil
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
