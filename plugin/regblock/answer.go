package regblock

import (
	"encoding/json"
	"net/netip"
	"strconv"
	"strings"

	"github.com/miekg/dns"

	"github.com/regblock/regblock/plugin/pkg/blockindex"
	"github.com/regblock/regblock/plugin/pkg/blocklist"
)

// answers builds block answers.
type answers struct {
	v4, v6   []netip.Addr
	nxdomain bool // no notice addresses configured
	ttl      uint32
}

func newAnswers(notice []netip.Addr, ttl uint32) answers {
	a := answers{ttl: ttl, nxdomain: len(notice) == 0}
	for _, addr := range notice {
		if addr.Is4() {
			a.v4 = append(a.v4, addr)
		} else {
			a.v6 = append(a.v6, addr)
		}
	}
	return a
}

// block returns the answer to r for a name that m matched. An entry of
// regblock's own format answers with the notice addresses for A and AAAA,
// NODATA for other types and for a family without an address, NXDOMAIN when
// there are no notice addresses at all; an RPZ entry answers as its action
// says. Negative answers carry a synthetic SOA, owned by zone (the listed
// name), so that downstream caches keep them for ttl.
func (a answers) block(r *dns.Msg, m blockindex.Match, zone string) *dns.Msg {
	q := r.Question[0]
	resp := new(dns.Msg)
	resp.SetReply(r) // echoes the question as asked, 0x20 case included
	resp.RecursionAvailable = true

	switch {
	case m.Action == blocklist.NXDomain || m.Action == blocklist.Notice && a.nxdomain:
		resp.Rcode = dns.RcodeNameError
	case m.Action == blocklist.LocalData:
		resp.Answer = localData(q, m.Local)
	case m.Action != blocklist.Notice: // NODATA
	case q.Qtype == dns.TypeA:
		for _, addr := range a.v4 {
			resp.Answer = append(resp.Answer, &dns.A{Hdr: a.header(q.Name, dns.TypeA), A: addr.AsSlice()})
		}
	case q.Qtype == dns.TypeAAAA:
		for _, addr := range a.v6 {
			resp.Answer = append(resp.Answer, &dns.AAAA{Hdr: a.header(q.Name, dns.TypeAAAA), AAAA: addr.AsSlice()})
		}
	}
	if len(resp.Answer) == 0 {
		resp.Ns = []dns.RR{a.soa(dns.Fqdn(zone), uint32(m.List.Serial))} // RFC 1982: the low 32 bits
	}

	if opt := r.IsEdns0(); opt != nil {
		resp.SetEdns0(max(opt.UDPSize(), dns.MinMsgSize), opt.Do())
		ede := &dns.EDNS0_EDE{InfoCode: dns.ExtendedErrorCodeCensored, ExtraText: extraText(m, wantsStructured(opt))}
		resp.IsEdns0().Option = append(resp.IsEdns0().Option, ede)
	}
	return resp
}

// localData answers q from an RPZ entry's records: a CNAME whatever the
// type asked, else the records of that type (all for ANY), each given the
// query's name; none is NODATA.
func localData(q dns.Question, local []dns.RR) []dns.RR {
	var answer []dns.RR
	for _, rr := range local {
		t := rr.Header().Rrtype
		if t == q.Qtype || t == dns.TypeCNAME || q.Qtype == dns.TypeANY {
			rr = dns.Copy(rr)
			rr.Header().Name = q.Name
			answer = append(answer, rr)
		}
	}
	return answer
}

func (a answers) header(name string, rrtype uint16) dns.RR_Header {
	return dns.RR_Header{Name: name, Rrtype: rrtype, Class: dns.ClassINET, Ttl: a.ttl}
}

// soa is the synthetic SOA of negative answers, owned by the listed name.
func (a answers) soa(zone string, serial uint32) *dns.SOA {
	return &dns.SOA{
		Hdr:     a.header(zone, dns.TypeSOA),
		Ns:      blocklist.SOAMname,
		Mbox:    blocklist.SOARname,
		Serial:  serial,
		Refresh: 3600,
		Retry:   600,
		Expire:  86400,
		Minttl:  a.ttl,
	}
}

// wantsStructured reports whether the query signals support for
// draft-ietf-dnsop-structured-dns-error: an EDE option with no EXTRA-TEXT
// (the draft sends INFO-CODE 0 and OPTION-LENGTH 2).
func wantsStructured(opt *dns.OPT) bool {
	for _, o := range opt.Option {
		if ede, ok := o.(*dns.EDNS0_EDE); ok && ede.ExtraText == "" {
			return true
		}
	}
	return false
}

// structuredError is the EXTRA-TEXT JSON of
// draft-ietf-dnsop-structured-dns-error. No "s" sub-error goes with Censored.
type structuredError struct {
	Contact       []string `json:"c,omitempty"`
	Justification string   `json:"j"`
	Organization  string   `json:"o,omitempty"`
}

// extraText says who ordered the block, under which authority and order, and
// where to appeal: as the draft's JSON when asked for, else as one sentence.
func extraText(m blockindex.Match, structured bool) string {
	l := m.List
	var b strings.Builder
	b.WriteString("Blocked by order of ")
	if l.Issuer != "" {
		b.WriteString(l.Issuer)
	} else {
		b.WriteString("the issuer of list " + l.Name)
	}
	if l.Authority != "" {
		b.WriteString(" under " + l.Authority)
	}
	if m.Order != "" {
		b.WriteString(", order " + m.Order)
	}
	if m.Category == blocklist.CategoryCanary {
		b.WriteString(" (canary name for testing enforcement)")
	}
	b.WriteString(" (list " + l.Name + " serial " + strconv.FormatUint(l.Serial, 10) + ")")
	if l.Appeal != "" {
		b.WriteString("; appeal at " + l.Appeal)
	}
	b.WriteString(".")
	if !structured {
		return b.String()
	}
	// The draft wants at least one contact URI; the appeal address is one.
	contact := l.Contact
	if len(contact) == 0 && l.Appeal != "" {
		contact = []string{l.Appeal}
	}
	text, err := json.Marshal(structuredError{Contact: contact, Justification: b.String(), Organization: l.Issuer})
	if err != nil {
		panic(err) // a struct of strings always marshals
	}
	return string(text)
}

// encryptedDNSCanary answers the names browsers and systems ask before they
// switch to encrypted DNS of their own choosing, when the operator's order
// covers that bypass: NXDOMAIN for use-application-dns.net (Firefox then
// keeps using this resolver) and NODATA for _dns.resolver.arpa (no
// designated encrypted resolver is advertised). It returns nil for any other
// name. This only stops clients that ask; it is no barrier to one that
// does not.
func encryptedDNSCanary(r *dns.Msg, ttl uint32) *dns.Msg {
	q := r.Question[0]
	name := strings.ToLower(dns.Fqdn(q.Name))
	if name != "use-application-dns.net." && name != "_dns.resolver.arpa." {
		return nil
	}
	resp := new(dns.Msg)
	resp.SetReply(r)
	resp.RecursionAvailable = true
	if name == "use-application-dns.net." {
		resp.Rcode = dns.RcodeNameError
	}
	resp.Ns = []dns.RR{answers{ttl: ttl}.soa(dns.Fqdn(q.Name), 1)}
	return resp
}
