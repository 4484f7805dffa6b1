package blocklist

import (
	"bufio"
	"cmp"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
)

// The names of the synthetic SOA records regblock writes: in the negative
// answers of blocked names, and in exported zones. .invalid is reserved
// (RFC 6761): nothing can ever be reached at these names.
const (
	SOAMname = "blocked.regblock.invalid."
	SOARname = "hostmaster.regblock.invalid."
)

// rpzRecord is one owner of the exported zone: a trigger and its entry.
type rpzRecord struct {
	owner string // relative to the zone's apex
	entry Entry
}

// WriteRPZ writes l as a Response Policy Zone that BIND, Unbound and
// PowerDNS enforce as regblock enforces l, and that ParseRPZ reads back to
// a list that decides every name and address as l does: NAME becomes NAME
// and *.NAME, =NAME just NAME, *.NAME just *.NAME, an exception a
// passthru, ip:PREFIX an rpz-ip trigger. Blocked names get NXDOMAIN, or the
// notice addresses as local data. The zone has no $ORIGIN, so it loads
// under any zone name; its SOA serial is l's serial, which must fit in 32
// bits, and l's header travels in ";$" comment lines.
func WriteRPZ(w io.Writer, l *List, notice []netip.Addr, ttl uint32) error {
	if l.Hashed() {
		return fmt.Errorf("%s is a hashed list: an RPZ zone names its triggers in plain, so a confidential list cannot be exported (BIND, Unbound and PowerDNS cannot match digests)", l.File)
	}
	if l.Serial > 1<<32-1 {
		return fmt.Errorf("%s: serial %d does not fit an SOA serial (32 bits)", l.File, l.Serial)
	}
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "; Response Policy Zone exported by regblock from %s: list %s, serial %d.\n", l.File, l.Name, l.Serial)
	fmt.Fprintf(bw, "; regblock reads the %q lines as the list's header; other resolvers ignore them.\n", ";$")
	for _, f := range l.Fields() {
		if f.Key != "serial" { // the SOA's
			fmt.Fprintf(bw, ";$ %s: %s\n", f.Key, f.Value)
		}
	}
	fmt.Fprintf(bw, "$TTL %d\n@ SOA %s %s %d 3600 600 86400 %d\n@ NS localhost.\n", ttl, SOAMname, SOARname, l.Serial, ttl)

	for _, r := range rpzRecords(l) {
		e := r.entry
		comment := ""
		if e.Order != "" || e.Category != "" {
			comment = " ; order=" + cmp.Or(e.Order, "-")
			if e.Category != "" {
				comment += " category=" + e.Category
			}
		}
		// An address trigger fires on answers of its own family only, and
		// takes local data of that family only.
		addrs := notice
		if e.Prefix.IsValid() {
			addrs = slices.DeleteFunc(slices.Clone(notice), func(a netip.Addr) bool { return a.Is4() != e.Prefix.Addr().Is4() })
		}
		switch {
		case e.Kind.IsException():
			fmt.Fprintf(bw, "%s CNAME rpz-passthru.%s\n", r.owner, comment)
		case len(notice) == 0:
			fmt.Fprintf(bw, "%s CNAME .%s\n", r.owner, comment)
		case len(addrs) == 0: // regblockd answers NODATA for a family without a notice address
			fmt.Fprintf(bw, "%s CNAME *.%s\n", r.owner, comment)
		default:
			for _, a := range addrs {
				rrtype := "A"
				if a.Is6() {
					rrtype = "AAAA"
				}
				fmt.Fprintf(bw, "%s %s %s%s\n", r.owner, rrtype, a, comment)
			}
		}
	}
	return bw.Flush()
}

// rpzRecords maps l's entries onto RPZ triggers, one entry per owner: at
// each name, the entry that decides for the name itself and the one that
// decides for the names below it, by the list's own precedence.
func rpzRecords(l *List) []rpzRecord {
	type decision struct {
		entry Entry
		rank  int
	}
	best := map[string]decision{}
	consider := func(owner string, e Entry, rank int) {
		// Of entries as narrow at a name, the one whose order reference
		// (then category) sorts first, as regblockd picks it.
		if d, ok := best[owner]; !ok || rank < d.rank || rank == d.rank && !e.Prefix.IsValid() && CompareClaims(e.Order, e.Category, e.Action, e.Local, d.entry.Order, d.entry.Category, d.entry.Action, d.entry.Local) < 0 {
			best[owner] = decision{e, rank}
		}
	}
	entries := l.Entries
	if l.Canary != "" {
		entries = append(slices.Clip(entries), Entry{Kind: Exact, Name: l.Canary})
	}
	for _, e := range entries {
		rank := e.Kind.Rank() // the list's own precedence, as regblockd applies it
		if e.Prefix.IsValid() {
			consider(rpzIPOwner(e.Prefix), e, rank)
			continue
		}
		name := dnsName(e.Name)
		switch e.Kind {
		case ExceptExact, Exact:
			consider(name, e, rank)
		case ExceptBelow, Below:
			consider("*."+name, e, rank)
		default: // Exception and Subtree: the name and the names below it
			consider(name, e, rank)
			consider("*."+name, e, rank)
		}
	}
	// An RPZ wildcard *.W stops at any name of the zone below W (a trigger,
	// or a name above one): in BIND and Unbound it does not match the names
	// below that name, and in BIND not that name itself if it has no trigger
	// of its own. regblock's NAME has no such gaps, so at each name under
	// a blocking wildcard, the wildcard's decision is written out again.
	nodes := map[string]bool{}
	for owner := range best {
		if strings.HasSuffix(owner, ".rpz-ip") {
			continue
		}
		for n := strings.TrimPrefix(owner, "*."); n != "" && !nodes[n]; _, n, _ = strings.Cut(n, ".") {
			nodes[n] = true
		}
	}
	inherited := func(n string) (decision, bool) {
		for a := n; strings.Contains(a, "."); {
			_, a, _ = strings.Cut(a, ".")
			if d, ok := best["*."+a]; ok {
				return d, !d.entry.Kind.IsException()
			}
		}
		return decision{}, false
	}
	var fill []rpzRecord
	for n := range nodes {
		d, blocked := inherited(n)
		if !blocked {
			continue
		}
		if _, ok := best[n]; !ok {
			fill = append(fill, rpzRecord{n, d.entry})
		}
		if _, ok := best["*."+n]; !ok {
			fill = append(fill, rpzRecord{"*." + n, d.entry})
		}
	}
	for _, r := range fill {
		best[r.owner] = decision{r.entry, 0}
	}
	records := make([]rpzRecord, 0, len(best))
	for owner, d := range best {
		records = append(records, rpzRecord{owner, d.entry})
	}
	slices.SortFunc(records, func(a, b rpzRecord) int { return cmp.Compare(a.owner, b.owner) })
	return records
}

// dnsName is a canonical list name as a relative zone file name: the
// characters a zone file gives meaning to are escaped.
func dnsName(name string) string {
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		switch c := name[i]; c {
		case ';', '(', ')', '"', '@', '$', '\\', ' ', '\t':
			fmt.Fprintf(&b, "\\%03d", c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// rpzIPOwner is the rpz-ip owner of a prefix: its length, then its
// address's labels in reverse order, "zz" for the longest run of zero
// groups of an IPv6 address.
func rpzIPOwner(p netip.Prefix) string {
	var labels []string
	if p.Addr().Is4() {
		a := p.Addr().As4()
		for i := 3; i >= 0; i-- {
			labels = append(labels, fmt.Sprint(a[i]))
		}
	} else {
		// netip writes the shortest form, "::" for the longest run of zeros.
		groups := strings.Split(p.Addr().String(), ":")
		for i := len(groups) - 1; i >= 0; i-- {
			g := groups[i]
			if g == "" {
				if len(labels) > 0 && labels[len(labels)-1] == "zz" {
					continue // "::" at either end splits into two empty groups
				}
				g = "zz"
			}
			labels = append(labels, g)
		}
	}
	return fmt.Sprintf("%d.%s.rpz-ip", p.Bits(), strings.Join(labels, "."))
}
