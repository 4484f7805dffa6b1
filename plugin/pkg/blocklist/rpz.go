package blocklist

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/miekg/dns"
	"github.com/regblock/regblock/plugin/pkg/safename"
)

// RPZ zone files (NAME.rpz) are the second input format: a Response Policy
// Zone as BIND, Unbound, PowerDNS and Knot read it, signed like a list.
//
// The zone's first record is its SOA, whose owner is the zone's apex and
// whose serial is the list's serial. Every other record's owner, less the
// apex, is a trigger: NAME (exactly the name), *.NAME (the names below it)
// or PREFIXLEN.REVERSED-ADDRESS.rpz-ip (an address in an upstream answer).
// Its records are the action: CNAME . (NXDOMAIN), CNAME *. (NODATA),
// CNAME rpz-passthru. (an exception), CNAME rpz-drop. (no answer), or
// local data (any other records, answered as they are).
//
// What RPZ cannot say comes from comment lines in the same signed file,
// ";$ key: value", with the keys of a list's header but serial (the SOA's):
// name (else the file's name without .rpz), issuer, issued, expires,
// authority, appeal, contact and canary. BIND and Unbound ignore them.

// RPZSuffix ends the name of an RPZ zone file.
const RPZSuffix = ".rpz"

// rpzHeader starts a metadata comment line in an RPZ zone file.
const rpzHeader = ";$"

// defaultOrigin is the origin of relative names in a zone file without
// $ORIGIN: exported zones have none, so that any zone name can load them.
const defaultOrigin = "rpz.invalid."

// RPZ actions as CNAME targets.
const (
	rpzPassthru = "rpz-passthru."
	rpzDrop     = "rpz-drop."
	rpzTCPOnly  = "rpz-tcp-only."
)

// The triggers of RPZ that regblock does not enforce: each needs what a
// forwarding resolver does not see (name servers) or a per-client policy.
var unsupportedTriggers = map[string]string{
	"rpz-nsdname":   "name server name",
	"rpz-nsip":      "name server address",
	"rpz-client-ip": "client address",
}

// lineReader hands the zone parser the file a byte at a time (it then does
// not buffer) and counts the lines it has read, so that an error found in a
// record can name the record's line.
type lineReader struct {
	strings.Reader
	lines int
}

func (r *lineReader) ReadByte() (byte, error) {
	c, err := r.Reader.ReadByte()
	if c == '\n' && err == nil {
		r.lines++
	}
	return c, err
}

// rpzParser is the state of one RPZ parse beyond the list parser's.
type rpzParser struct {
	*parser
	apex    string          // the zone's apex, lower case, with the trailing dot
	pending *Entry          // the entry whose records are being read
	owner   string          // pending's owner name
	done    map[string]int  // the line of each owner, less the apex
	nodes   map[string]int  // the line of each name with a trigger at or below it
	wild    map[string]bool // the names with a wildcard trigger below them
}

func (p *parser) parseRPZ(text string) {
	text = strings.TrimPrefix(text, "\uFEFF")
	if !p.rpzLines(text) {
		return
	}
	if p.seen["name"] == 0 {
		name := strings.TrimSuffix(filepath.Base(p.list.File), RPZSuffix)
		if !safename.Valid(name) {
			p.line = 0
			p.errorf("list name %q (from the file name): use 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit, or give one with %q", name, rpzHeader+" name: NAME")
			return
		}
		p.list.Name = name
	}
	p.list.Version = Version

	r := &lineReader{Reader: *strings.NewReader(text)}
	zp := dns.NewZoneParser(r, defaultOrigin, "")
	zp.SetIncludeAllowed(false) // everything enforced must be in the signed file
	zp.SetDefaultTTL(3600)
	rp := rpzParser{parser: p, done: map[string]int{}, nodes: map[string]int{}, wild: map[string]bool{}}
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		p.line = r.lines
		if r.Len() == 0 && !strings.HasSuffix(text, "\n") {
			p.line++ // the last line has no newline
		}
		rp.record(rr, zp.Comment())
		if len(p.errs) > maxErrors {
			return
		}
	}
	if err := zp.Err(); err != nil {
		p.line = 0
		msg := err.Error()
		if m := zoneErrorLine.FindStringSubmatch(msg); m != nil {
			p.line, _ = strconv.Atoi(m[2])
			msg = m[1]
		}
		p.errorf("%s", strings.TrimPrefix(msg, "dns: "))
		return
	}
	rp.flush()
	rp.stopWildcards()
	if rp.apex == "" {
		p.line = 0
		p.errorf("no SOA record: an RPZ zone starts with its SOA, whose serial is the list's serial")
	}
}

// zoneErrorLine takes the line number out of a miekg/dns parse error.
var zoneErrorLine = regexp.MustCompile(`^(.*) at line: (\d+):\d+$`)

// rpzLines checks every line as a list's lines are checked and reads the
// metadata comments; it reports whether the file may go on to the zone
// parser.
func (p *parser) rpzLines(text string) bool {
	for rest := text; len(rest) > 0; {
		var line string
		line, rest, _ = strings.Cut(rest, "\n")
		line = strings.TrimSuffix(line, "\r")
		p.line++
		switch {
		case len(line) > MaxLine:
			p.errorf("line is %d bytes long; at most %d are allowed", len(line), MaxLine)
		case !utf8.ValidString(line):
			p.errorf("line is not valid UTF-8")
		case strings.IndexFunc(line, isControl) >= 0:
			i := strings.IndexFunc(line, isControl)
			r, _ := utf8.DecodeRuneInString(line[i:])
			p.errorf("control character %U in column %d", r, i+1)
		case len(line) >= len("$GENERATE") && strings.EqualFold(line[:len("$GENERATE")], "$GENERATE"):
			// One line expands to 65 536 records: a small file could
			// make the parser build billions, past any size limit.
			p.errorf("$GENERATE directive not allowed: write the records out (a list is bounded by its size, and one $GENERATE line makes up to 65 536 records)")
		case strings.HasPrefix(line, rpzHeader):
			if key, _, _ := strings.Cut(line[len(rpzHeader):], ":"); strings.TrimSpace(key) == "serial" {
				p.errorf("the serial of an RPZ zone is its SOA serial, not a %q line", rpzHeader+" serial")
				continue
			}
			p.header(line[len(rpzHeader):])
		}
	}
	return len(p.errs) == 0
}

// record takes one record of the zone, with the comment on its line.
func (p *rpzParser) record(rr dns.RR, comment string) {
	owner := strings.ToLower(rr.Header().Name)
	if p.apex == "" {
		soa, ok := rr.(*dns.SOA)
		if !ok {
			p.errorf("the first record must be the zone's SOA, not %s", dns.TypeToString[rr.Header().Rrtype])
			return
		}
		p.apex = owner
		p.list.Serial = uint64(soa.Serial)
		return
	}
	if owner == p.apex {
		if rr.Header().Rrtype != dns.TypeNS {
			p.errorf("%s record at the zone's apex %s: only its SOA and NS records may be there", dns.TypeToString[rr.Header().Rrtype], p.apex)
		}
		return
	}
	rel, ok := strings.CutSuffix(owner, "."+p.apex)
	if !ok {
		p.errorf("owner %s is outside the zone %s", owner, p.apex)
		return
	}
	if owner == p.owner && p.pending != nil {
		p.addRecord(rr)
		return
	}
	p.flush()
	if line, ok := p.done[rel]; ok {
		p.errorf("%s already has records at line %d: keep the records of one trigger together", rel, line)
		return
	}
	e := p.trigger(rel)
	if e == nil {
		return
	}
	e.Line = p.line
	e.Order, e.Category = commentMeta(comment)
	p.pending, p.owner = e, owner
	p.done[rel] = p.line
	p.addRecord(rr)
}

// trigger returns the entry for the trigger rel (an owner name less the
// apex), without its action, or nil after reporting why there is none.
func (p *rpzParser) trigger(rel string) *Entry {
	last := rel[strings.LastIndexByte(rel, '.')+1:]
	if what, ok := unsupportedTriggers[last]; ok {
		p.errorf("%s: %s triggers (%s) are not supported; regblock enforces QNAME and rpz-ip triggers", rel, last, what)
		return nil
	}
	if last == "rpz-ip" {
		prefix, err := rpzIP(strings.TrimSuffix(rel, ".rpz-ip"))
		if err != nil {
			p.errorf("%s: %v", rel, err)
			return nil
		}
		return &Entry{Prefix: prefix}
	}
	if strings.HasPrefix(last, "rpz-") {
		p.errorf("%s: unknown RPZ trigger %q", rel, last)
		return nil
	}
	e := &Entry{Kind: Exact}
	name := rel
	if rest, ok := strings.CutPrefix(rel, "*."); ok {
		e.Kind, name = Below, rest
	}
	if name == "*" || strings.Contains(name, "*") {
		p.errorf("%s: a wildcard may only be the first label, above a name", rel)
		return nil
	}
	c, err := CanonicalName(name)
	if err != nil {
		p.errorf("trigger %s: %v", quote(rel), err)
		return nil
	}
	e.Name = c
	return e
}

// addRecord adds rr, a record of the pending trigger, to its action.
func (p *rpzParser) addRecord(rr dns.RR) {
	e := p.pending
	if strings.TrimSpace(strings.TrimPrefix(rr.String(), rr.Header().String())) == "" {
		p.errorf("%s: %s record without data", p.owner, dns.TypeToString[rr.Header().Rrtype])
		return
	}
	if e.Kind.IsException() || (e.Action != Notice && e.Action != LocalData) {
		p.errorf("%s has a %s record besides its %s action", p.owner, dns.TypeToString[rr.Header().Rrtype], actionName(e))
		return
	}
	switch rr := rr.(type) {
	case *dns.CNAME:
		if e.Action == LocalData {
			p.errorf("%s has a CNAME besides other records", p.owner)
			return
		}
		p.cname(e, strings.ToLower(rr.Target), rr)
		return
	case *dns.SOA, *dns.NS, *dns.DNAME:
		p.errorf("%s: %s records are not supported as RPZ local data", p.owner, dns.TypeToString[rr.Header().Rrtype])
		return
	}
	if e.Action == LocalData && len(e.Local) > 0 && e.Local[0].Header().Rrtype == dns.TypeCNAME {
		p.errorf("%s has a CNAME besides other records", p.owner)
		return
	}
	e.Action = LocalData
	e.Local = append(e.Local, rr)
}

// cname reads the action of a CNAME record to target.
func (p *rpzParser) cname(e *Entry, target string, rr *dns.CNAME) {
	switch {
	case target == ".":
		e.Action = NXDomain
	case target == "*.":
		e.Action = NoData
	case target == rpzDrop:
		e.Action = Drop
	case target == rpzPassthru || (e.Kind == Exact && target == e.Name+"."):
		// The second form is RPZ's older passthru: a CNAME to the name itself.
		switch {
		case e.Prefix.IsValid():
			e.Kind = Exception
		case e.Kind == Below:
			e.Kind = ExceptBelow
		default:
			e.Kind = ExceptExact
		}
	case target == rpzTCPOnly:
		p.errorf("%s: the rpz-tcp-only action is not supported", p.owner)
	case strings.HasPrefix(target, "*."):
		p.errorf("%s: a CNAME to a wildcard (%s) is not supported", p.owner, target)
	default:
		e.Action = LocalData
		e.Local = append(e.Local, rr)
	}
}

func actionName(e *Entry) string {
	if e.Kind.IsException() {
		return "passthru"
	}
	return e.Action.String()
}

// flush hands the pending entry to the list.
func (p *rpzParser) flush() {
	e := p.pending
	if e == nil {
		return
	}
	p.pending, p.owner = nil, ""
	if e.Action == Notice && !e.Kind.IsException() {
		// Only a record can make a trigger; an action that was refused
		// has been reported.
		return
	}
	for _, rr := range e.Local {
		rr.Header().Name = "." // the resolver gives the records the query's name
	}
	if e.Kind == Exact && e.Name == p.list.Canary {
		e.Category = CategoryCanary // as exported: the canary header and its trigger
	}
	if !e.Prefix.IsValid() {
		for n := e.Name; n != ""; n = parent(n) {
			if _, ok := p.nodes[n]; ok {
				break
			}
			p.nodes[n] = e.Line
		}
		if e.Kind == Below || e.Kind == ExceptBelow {
			p.wild[e.Name] = true
		}
	}
	p.add(*e)
}

// stopWildcards adds what RPZ's wildcards imply and regblock's *.name does
// not say: a wildcard trigger *.W matches a name below W only if no name
// of the zone lies between them, a trigger or a name above one (an "empty
// non-terminal"), as in DNS wildcards (RFC 4592). BIND and Unbound both
// enforce it so: with *.abuse.example and help.abuse.example in a zone,
// x.help.abuse.example is not matched. (They differ on the name in between
// itself: Unbound lets *.W match an empty non-terminal, BIND does not;
// regblock does as Unbound.) Each name in between gets an exception for the
// names below it, !*.name, which any trigger further down overrides.
func (p *rpzParser) stopWildcards() {
	if len(p.wild) == 0 {
		return
	}
	var stops []string
	for n := range p.nodes {
		if p.wild[n] {
			continue
		}
		for a := parent(n); a != ""; a = parent(a) {
			if p.wild[a] {
				stops = append(stops, n)
				break
			}
		}
	}
	slices.Sort(stops)
	for _, n := range stops {
		p.add(Entry{Kind: ExceptBelow, Name: n, Line: p.nodes[n]})
	}
}

// parent returns the name one label up, "" above a single label.
func parent(name string) string {
	_, rest, _ := strings.Cut(name, ".")
	return rest
}

// commentMeta reads an order reference and a category from a record's
// comment, as "regblock export" writes them: "; order=REF category=CAT".
// Any other comment is only a comment.
func commentMeta(comment string) (order, category string) {
	fields := strings.Fields(strings.TrimPrefix(comment, ";"))
	for _, f := range fields {
		k, v, ok := strings.Cut(f, "=")
		switch {
		case ok && k == "order" && v != "":
			if v != "-" {
				order = v
			}
		case ok && k == "category" && validCategory(v) && v != CategoryCanary:
			category = v
		default:
			return "", ""
		}
	}
	return strings.Clone(order), strings.Clone(category)
}

// rpzIP parses the address of an rpz-ip trigger, without ".rpz-ip":
// the prefix length, then the address's labels in reverse order, "zz"
// standing for the longest run of zero groups in IPv6
// ("24.0.113.0.203", "48.zz.db8.2001").
func rpzIP(s string) (netip.Prefix, error) {
	labels := strings.Split(s, ".")
	bits, err := strconv.Atoi(labels[0])
	if err != nil || len(labels) < 2 {
		return netip.Prefix{}, fmt.Errorf("not an rpz-ip trigger (PREFIXLEN.REVERSED-ADDRESS.rpz-ip)")
	}
	parts := labels[1:]
	for i, j := 0, len(parts)-1; i < j; i, j = i+1, j-1 {
		parts[i], parts[j] = parts[j], parts[i]
	}
	var text string
	if len(parts) == 4 && !strings.Contains(s, "zz") {
		text = strings.Join(parts, ".")
	} else {
		text = strings.ReplaceAll(strings.Join(parts, ":"), "zz", "")
		if strings.HasPrefix(text, ":") {
			text = ":" + text
		}
		if strings.HasSuffix(text, ":") {
			text += ":"
		}
	}
	addr, err := netip.ParseAddr(text)
	if err != nil || addr.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("%s is not an address", text)
	}
	prefix, err := addr.Prefix(bits)
	if err != nil || bits < 1 || (addr.Is4() && bits > 32) {
		return netip.Prefix{}, fmt.Errorf("prefix length %d does not fit %s", bits, text)
	}
	if prefix.Addr() != addr {
		return netip.Prefix{}, fmt.Errorf("%s/%d has bits set after the prefix length", text, bits)
	}
	return prefix, nil
}
