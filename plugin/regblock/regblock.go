// Package regblock is a CoreDNS plugin that enforces regulator-issued,
// signed DNS blocklists: listed names get the address of a legal notice page
// (or NXDOMAIN) and an Extended DNS Error that says who ordered the block.
package regblock

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/metrics"

	"github.com/miekg/dns"

	"github.com/regblock/regblock/plugin/pkg/blockindex"
	"github.com/regblock/regblock/plugin/pkg/blocklist"
)

// Regblock is the plugin handler.
type Regblock struct {
	Next plugin.Handler

	cfg     config
	answers answers
	queries serverCounters

	// The lists in force (index, set, audit), shared with every server
	// block of the same lists configuration.
	*lists
	shutOnce sync.Once
}

// newRegblock returns the handler of one server block, with the lists of
// its configuration.
func newRegblock(cfg config) (*Regblock, error) {
	rb, err := reserveRegblock(cfg)
	if err != nil {
		return nil, err
	}
	if err := rb.lists.load(); err != nil {
		rb.shutdown()
		return nil, err
	}
	return rb, nil
}

// reserveRegblock returns the handler of one server block with its lists
// reserved, not loaded yet (lists.load).
func reserveRegblock(cfg config) (*Regblock, error) {
	l, err := reserveLists(cfg)
	if err != nil {
		return nil, err
	}
	return &Regblock{cfg: cfg, answers: newAnswers(cfg.notice, cfg.ttl), lists: l}, nil
}

// shutdown releases the lists, once. Queries still in flight may go on
// using them and the audit log: once it is closed their events are
// dropped and counted.
func (rb *Regblock) shutdown() error {
	rb.shutOnce.Do(rb.lists.release)
	return nil
}

// ServeDNS implements the plugin.Handler interface.
func (rb *Regblock) ServeDNS(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	switch {
	case r.Opcode != dns.OpcodeQuery:
		// NOTIFY, UPDATE, IQUERY, STATUS and the rest would go on to the
		// next plugins unchecked, and the forward plugin sends them on with
		// their question: a listed name's real answer could come back. A
		// resolver has no use for them; the server answers NOTIMP.
		return dns.RcodeNotImplemented, nil
	case len(r.Question) > 1:
		// Only the first question would be checked (RFC 9619: FORMERR).
		return dns.RcodeFormatError, nil
	case len(r.Question) == 0:
		// A DNS cookie exchange: nothing to look up, nothing answered.
		return plugin.NextOrFailure(rb.Name(), rb.Next, ctx, w, r)
	}
	server := metrics.WithServer(ctx)
	rb.queries.get(server).Inc()
	// The question name as received: Lookup folds case and escapes itself,
	// without the allocation request.Request.Name() costs.
	q := r.Question[0]
	if rb.cfg.encryptedDNSCanaries {
		if resp := encryptedDNSCanary(r, rb.cfg.ttl); resp != nil {
			w.WriteMsg(resp)
			return dns.RcodeSuccess, nil
		}
	}
	var m blockindex.Match
	if !rb.index.Load().Find(q.Name, &m) {
		// The answer may still lead to a listed name through a CNAME or
		// DNAME chain (cloaking): check it on its way back.
		return plugin.NextOrFailure(rb.Name(), rb.Next, ctx, &cloakWriter{ResponseWriter: w, rb: rb, req: r, server: server}, r)
	}
	rb.block(w, r, m, q.Name, server)
	return dns.RcodeSuccess, nil
}

// block writes the block answer to r for a match of m in name (the query
// name, or a CNAME or DNAME target in its answer; the query name for an
// address match), counts and audits it. The drop action writes nothing.
func (rb *Regblock) block(w dns.ResponseWriter, r *dns.Msg, m blockindex.Match, name, server string) error {
	q := r.Question[0]
	// Counted and audited before the answer leaves: whoever has the answer
	// finds the block in the metrics and the audit log.
	countBlock(server, m, q.Qtype)
	if rb.audit != nil {
		rb.audit.block(blockRecord{time: time.Now(), match: m, qname: q.Name, matched: name, qtype: q.Qtype, client: w.RemoteAddr(), mode: rb.cfg.auditClient})
	}
	if m.Action == blocklist.Drop {
		return nil
	}
	return w.WriteMsg(rb.answers.block(r, m, name[m.Start:]))
}

// cloakWriter sees the answers of the plugins after regblock. An answer
// that leads to a listed name, through CNAME and DNAME records at any depth
// or an HTTPS or SVCB record's target (cloaking), is replaced by the block
// answer for that name, as RPZ resolvers do: a name that is not listed must
// not become a way to reach one that is. So is an answer with an address
// in a listed prefix (an RPZ response-IP trigger), HTTPS and SVCB address
// hints included. Records of the additional section that are owned by a
// listed name or hold a listed address are left out.
type cloakWriter struct {
	dns.ResponseWriter
	rb     *Regblock
	req    *dns.Msg
	server string
}

// WriteMsg implements dns.ResponseWriter.
func (w *cloakWriter) WriteMsg(res *dns.Msg) error {
	ix := w.rb.index.Load()
	if !ix.HasAddrs() && !leadsOn(res) { // most answers
		return w.ResponseWriter.WriteMsg(res)
	}
	return w.writeChecked(ix, res)
}

// leadsOn reports whether res holds a record that may send a client on
// to another name: in its answer a CNAME, DNAME, HTTPS or SVCB record
// (whatever anyRedirect looks at), in its additional section any record
// but OPT (whatever withoutListedExtra may leave out).
func leadsOn(res *dns.Msg) bool {
	for _, rr := range res.Answer {
		switch rr.(type) {
		case *dns.A, *dns.AAAA: // most answers: two comparisons
		case *dns.DNAME:
			return true
		default:
			if redirect(rr) != "" {
				return true
			}
		}
	}
	for _, rr := range res.Extra {
		if _, ok := rr.(*dns.OPT); !ok {
			return true
		}
	}
	return false
}

// writeChecked writes res, or the block answer when it leads to a listed
// name or address, without the additional records that do.
func (w *cloakWriter) writeChecked(ix *blockindex.Index, res *dns.Msg) error {
	qname := w.req.Question[0].Name
	var m blockindex.Match
	var target string
	found, ok := anyRedirect(qname, res.Answer, func(name string) bool { target = name; return ix.Find(name, &m) })
	switch {
	case found:
		return w.rb.block(w.ResponseWriter, w.req, m, target, w.server)
	case !ok: // too many names to check: more than any resolver follows
		return w.ResponseWriter.WriteMsg(new(dns.Msg).SetRcode(w.req, dns.RcodeServerFailure))
	}
	if ix.HasAddrs() {
		addrs := ix.AddrsOf(qname)
		listed := func(addr netip.Addr) (ok bool) { m, ok = addrs.Lookup(addr); return ok }
		for _, rr := range res.Answer {
			if anyAddr(rr, listed) {
				return w.rb.block(w.ResponseWriter, w.req, m, qname, w.server)
			}
		}
	}
	return w.ResponseWriter.WriteMsg(withoutListedExtra(ix, res))
}

// maxRedirects is the most names an answer may send a client on to, its
// query name included, and maxDNAMEs the most DNAME records it may hold
// (repeated ones included):
// resolvers follow chains of 8 to 16 redirections, and each DNAME is
// tried on every name. An answer past either is not checked but refused.
const (
	maxRedirects = 64
	maxDNAMEs    = 16
)

// anyRedirect reports whether fn holds for a name an answer to qname
// sends a client on to: a CNAME, HTTPS or SVCB target, and a name a DNAME
// record makes of qname, of such a target or of a name another DNAME
// made, at any depth (whether or not the answer holds the CNAMEs they
// synthesise). ok is false, and found with it, when the answer leads to
// more names than maxRedirects or holds more DNAMEs than maxDNAMEs.
func anyRedirect(qname string, answer []dns.RR, fn func(name string) bool) (found, ok bool) {
	var buf [8]string               // most answers lead to fewer names, and then nothing is allocated
	names := append(buf[:0], qname) // qname: checked already
	var dnames []*dns.DNAME
	records := 0 // DNAME records, repeated ones included
	for _, rr := range answer {
		if d, isDNAME := rr.(*dns.DNAME); isDNAME {
			records++
			if records > maxDNAMEs {
				return false, false
			}
			if !slices.ContainsFunc(dnames, func(e *dns.DNAME) bool { return sameDNAME(d, e) }) {
				dnames = append(dnames, d)
			}
		} else if target := redirect(rr); target != "" {
			names = append(names, target)
			if len(names) > maxRedirects {
				return false, false
			}
		}
	}
	for _, name := range names[1:] {
		if fn(name) {
			return true, true
		}
	}
	if len(dnames) == 0 { // most answers
		return false, true
	}
	seen := make(map[string]bool, len(names))
	for _, name := range names {
		seen[strings.ToLower(name)] = true
	}
	for i := 0; i < len(names); i++ { // names grows: DNAMEs apply to what DNAMEs made
		for _, d := range dnames {
			synth, ok := dnameTarget(d, names[i])
			folded := strings.ToLower(synth)
			if !ok || seen[folded] {
				continue
			}
			if len(names) == maxRedirects {
				return false, false
			}
			if fn(synth) {
				return true, true
			}
			seen[folded] = true
			names = append(names, synth)
		}
	}
	return false, true
}

// redirect returns the target of a CNAME, HTTPS or SVCB record, or "".
func redirect(rr dns.RR) string {
	switch rr := rr.(type) {
	case *dns.CNAME:
		return rr.Target
	case *dns.SVCB:
		if rr.Target != "." {
			return rr.Target
		}
	case *dns.HTTPS:
		if rr.Target != "." {
			return rr.Target
		}
	}
	return ""
}

// sameDNAME reports whether d and e make the same names: an answer may
// repeat a record, in another case, to make each name cost more.
func sameDNAME(d, e *dns.DNAME) bool {
	return strings.EqualFold(d.Hdr.Name, e.Hdr.Name) && strings.EqualFold(d.Target, e.Target)
}

// dnameTarget returns the name d makes of name, if name is below d's owner
// (any name but the root is below a DNAME of the root) and the name made
// is one a resolver would follow: at most 255 octets on the wire.
func dnameTarget(d *dns.DNAME, name string) (string, bool) {
	owner, prefix := d.Hdr.Name, ""
	switch {
	case owner == ".":
		if name == "." || !strings.HasSuffix(name, ".") {
			return "", false
		}
		prefix = name
	case len(name) <= len(owner) || !strings.EqualFold(name[len(name)-len(owner):], owner) || name[len(name)-len(owner)-1] != '.':
		return "", false
	default:
		prefix = name[:len(name)-len(owner)] // ends in a dot
	}
	target := d.Target
	if target == "." { // a DNAME to the root leaves the prefix
		target = ""
	}
	synth := prefix + target
	if len(synth) > 254 { // else at most 255 octets, escapes or not
		if _, ok := dns.IsDomainName(synth); !ok {
			return "", false
		}
	}
	return synth, true
}

// anyAddr reports whether fn holds for an address rr hands a client: an A
// or AAAA record's, or one of an HTTPS or SVCB record's hints.
func anyAddr(rr dns.RR, fn func(netip.Addr) bool) bool {
	switch rr := rr.(type) {
	case *dns.A:
		return anyIP(fn, rr.A)
	case *dns.AAAA:
		return anyIP(fn, rr.AAAA)
	case *dns.SVCB:
		return anyHint(rr.Value, fn)
	case *dns.HTTPS:
		return anyHint(rr.Value, fn)
	}
	return false
}

func anyHint(kvs []dns.SVCBKeyValue, fn func(netip.Addr) bool) bool {
	for _, kv := range kvs {
		switch kv := kv.(type) {
		case *dns.SVCBIPv4Hint:
			if anyIP(fn, kv.Hint...) {
				return true
			}
		case *dns.SVCBIPv6Hint:
			if anyIP(fn, kv.Hint...) {
				return true
			}
		}
	}
	return false
}

func anyIP(fn func(netip.Addr) bool, ips ...net.IP) bool {
	for _, ip := range ips {
		if addr, ok := netip.AddrFromSlice(ip); ok && fn(addr) {
			return true
		}
	}
	return false
}

// maxExtra is the most additional records (but OPT) an answer keeps, and
// maxExtraAddrs the most addresses they may hold (A and AAAA records,
// HTTPS and SVCB hints): each is looked up, and a hostile upstream's
// answer of thousands with owners of a hundred labels cost milliseconds.
// Answers to stub resolvers hold a few; past either limit they go, as the
// records are optional and a client asks for what it needs.
const (
	maxExtra      = 64
	maxExtraAddrs = 256
)

// withoutListedExtra returns res, or a copy of it without the additional
// records owned by a listed name or holding a listed address: glue for a
// listed name server, or the address of a listed mail exchanger. An
// answer with more than maxExtra of them, or maxExtraAddrs addresses in
// them, loses them all.
func withoutListedExtra(ix *blockindex.Index, res *dns.Msg) *dns.Msg {
	if extraTooLarge(res.Extra) {
		opt := res.IsEdns0()
		kept := *res
		kept.Extra = nil
		res = kept.Copy() // no record shared with what another plugin holds
		if opt != nil {
			res.Extra = []dns.RR{dns.Copy(opt)}
		}
		return res
	}
	// The address lookups of the last owner: records of one owner come
	// together.
	var addrs blockindex.Addrs
	owner, known := "", false
	listed := func(rr dns.RR) bool {
		if rr.Header().Rrtype == dns.TypeOPT {
			return false
		}
		if _, ok := ix.Lookup(rr.Header().Name); ok {
			return true
		}
		if !ix.HasAddrs() {
			return false
		}
		if !known || rr.Header().Name != owner {
			owner, known = rr.Header().Name, true
			addrs = ix.AddrsOf(owner)
		}
		return anyAddr(rr, func(addr netip.Addr) bool {
			_, ok := addrs.Lookup(addr)
			return ok
		})
	}
	if !slices.ContainsFunc(res.Extra, listed) {
		return res
	}
	res = res.Copy()
	res.Extra = slices.DeleteFunc(res.Extra, listed)
	return res
}

// extraTooLarge reports whether additional records hold more than
// maxExtra records (but OPT) or maxExtraAddrs addresses.
func extraTooLarge(extra []dns.RR) bool {
	records, addrs := 0, 0
	for _, rr := range extra {
		if rr.Header().Rrtype == dns.TypeOPT {
			continue
		}
		records++
		anyAddr(rr, func(netip.Addr) bool { addrs++; return false })
	}
	return records > maxExtra || addrs > maxExtraAddrs
}

// Name implements the plugin.Handler interface.
func (rb *Regblock) Name() string { return pluginName }

// Ready implements the ready.Readiness interface: ready once a verified list
// is in force.
func (rb *Regblock) Ready() bool {
	set := rb.lists.loaded()
	return set != nil && len(rb.index.Load().Lists()) > 0 && (rb.audit == nil || rb.audit.healthy()) && set.Unsaved() == 0
}
