// Package blocklist reads regblock's signed list format: a header of "#!"
// lines followed by one entry a line, with a detached minisign signature.
//
// It owns the list formats (plain, hashed, RPZ zones): reading, writing,
// linting and bumping them, described in docs/list-format.md. A list is
// accepted whole or not at all: Parse reports every error it finds, each
// naming the file and line, and returns no list when there is one. Keys and
// signature files are package minisig's, bounded file reads package
// regularfile's, and whether a verified version may be enforced package
// admit's.
package blocklist

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"aead.dev/minisign"
	"github.com/miekg/dns"
)

// Kind is what an entry's pattern matches.
type Kind uint8

const (
	// Subtree ("name") matches the name and every name below it.
	Subtree Kind = iota
	// Below ("*.name") matches only the names below the name.
	Below
	// Exact ("=name") matches exactly the name.
	Exact
	// Exception ("!name") unblocks the name and everything below it within
	// its own list.
	Exception
	// ExceptExact ("!=name") unblocks exactly the name within its own list:
	// an RPZ passthru at the name.
	ExceptExact
	// ExceptBelow ("!*.name") unblocks only the names below the name within
	// its own list: an RPZ passthru at *.name.
	ExceptBelow
)

// IsException reports whether k unblocks rather than blocks.
func (k Kind) IsException() bool { return k >= Exception }

// Rank orders the entries of one list at one name, lowest first: the first
// that applies to a query decides. Exact and Below (and their exceptions)
// never apply to the same query name, and both are narrower than an
// exception, which is narrower than a subtree entry; of two entries as
// narrow, the exception wins.
func (k Kind) Rank() int {
	switch k {
	case ExceptExact, ExceptBelow:
		return 0
	case Exact, Below:
		return 1
	case Exception:
		return 2
	}
	return 3
}

// CompareClaims orders what two entries of one pattern at one name say
// (order reference, category, answer, local data): of such entries the
// first in this order speaks for the name, whatever the order of their
// lines, so that a version answers the same whether it arrived whole or
// as a delta, and exported to RPZ.
func CompareClaims(aOrder, aCategory string, aAction Action, aLocal []dns.RR, bOrder, bCategory string, bAction Action, bLocal []dns.RR) int {
	if c := cmp.Or(cmp.Compare(aOrder, bOrder), cmp.Compare(aCategory, bCategory), cmp.Compare(aAction, bAction)); c != 0 || len(aLocal)+len(bLocal) == 0 {
		return c
	}
	return cmp.Compare(LocalText(aLocal), LocalText(bLocal))
}

// LocalText is local data as text, a record a line: what tells two
// answers apart.
func LocalText(rrs []dns.RR) string {
	var b strings.Builder
	for _, rr := range rrs {
		b.WriteString(rr.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// Prefix returns the pattern prefix of k as written in a list file.
func (k Kind) Prefix() string {
	switch k {
	case Below:
		return "*."
	case Exact:
		return "="
	case Exception:
		return "!"
	case ExceptExact:
		return "!="
	case ExceptBelow:
		return "!*."
	}
	return ""
}

// Action is what the resolver answers for a blocked name. Lists in
// regblock's own format always ask for the notice answer; RPZ zones say
// per entry.
type Action uint8

const (
	// Notice is the resolver's block answer: its notice addresses, or
	// NXDOMAIN when it has none.
	Notice Action = iota
	// NXDomain answers that the name does not exist (RPZ "CNAME .").
	NXDomain
	// NoData answers that the name has no records of the type asked
	// (RPZ "CNAME *.").
	NoData
	// Drop sends no answer at all (RPZ "CNAME rpz-drop.").
	Drop
	// LocalData answers with the entry's Local records (RPZ local data).
	LocalData
)

func (a Action) String() string {
	switch a {
	case NXDomain:
		return "nxdomain"
	case NoData:
		return "nodata"
	case Drop:
		return "drop"
	case LocalData:
		return "local-data"
	}
	return "notice"
}

// CategoryCanary is the category reported for a hit on a list's canary name.
const CategoryCanary = "canary"

// Entry is one line of a list: a name, or an address prefix that is
// matched against the addresses in upstream answers.
type Entry struct {
	Kind Kind
	// Name is canonical: lower case ASCII (punycode), no trailing dot.
	// It is empty for an address entry and a hashed entry.
	Name string
	// Hashed marks an entry of a hashed list ("h:DIGEST"), which names its
	// name only by Digest.
	Hashed bool
	Digest Digest
	// Prefix is the address prefix of an address entry ("ip:203.0.113.0/24",
	// an RPZ rpz-ip trigger), masked; its Kind is Subtree or Exception.
	Prefix netip.Prefix
	// Action is Notice in regblock's format; RPZ zones set it.
	Action Action
	// Local is the answer of a LocalData entry (RPZ local data); the
	// resolver gives the records the query's name.
	Local []dns.RR
	// Order is the order reference, empty when absent ("-").
	Order string
	// Category is empty when absent.
	Category string
	// Line is the entry's line number in its file, from 1.
	Line int
}

// Pattern returns the entry as written in canonical form, e.g. "*.bulk.example"
// or "ip:203.0.113.0/24".
func (e Entry) Pattern() string {
	if e.Prefix.IsValid() {
		return e.Kind.Prefix() + IPPrefix + e.Prefix.String()
	}
	if e.Hashed {
		return e.Kind.Prefix() + HashPrefix + e.Digest.String()
	}
	return e.Kind.Prefix() + e.Name
}

// IPPrefix starts the pattern of an address entry.
const IPPrefix = "ip:"

// Header is a list's signed metadata.
type Header struct {
	Version   int
	Name      string
	Issuer    string
	Serial    uint64
	Issued    time.Time
	Expires   time.Time // zero when the list does not expire
	Authority string
	Appeal    string   // a web address, empty when absent
	Contact   []string // mailto: and tel: URIs
	Canary    string   // canonical name, empty when absent
	// Salt is a hashed list's salt ("hashed: sha256 SALT"), SaltSize
	// bytes; nil for a plain list.
	Salt []byte
}

// List is a parsed list.
type List struct {
	Header
	Entries []Entry
	// File is the path the list was read from, used in messages.
	File string
	// SHA256 is the digest of the list file's exact bytes.
	SHA256 [sha256.Size]byte
	// Signers are the trusted keys whose signatures of the file verified,
	// each public key once, in the order of the .minisig file; nil for a
	// list parsed without its signature.
	Signers []minisign.PublicKey

	blocking int // Blocking's count once DropEntries has run
}

// Blocking returns the number of entries that block (exceptions excluded).
func (l *List) Blocking() int {
	if l.Entries == nil {
		return l.blocking
	}
	n := 0
	for _, e := range l.Entries {
		if !e.Kind.IsException() {
			n++
		}
	}
	return n
}

// DropEntries frees the entries of a list that no longer needs them (a
// resolver, once its lookup index is compiled); Blocking keeps its count.
func (l *List) DropEntries() {
	l.blocking = l.Blocking()
	l.Entries = nil
}

// Expired reports whether the list has an expiry time before now.
func (l *List) Expired(now time.Time) bool {
	return !l.Expires.IsZero() && now.After(l.Expires)
}

// Field is one header field as written: its key and its value.
type Field struct{ Key, Value string }

// Fields returns the header's fields that are set, in the order a list
// writes them, with values as written (times in RFC 3339, contacts
// separated by blanks): what a header line, an RPZ zone's ";$" lines and
// the toolkit's listings print.
func (h Header) Fields() []Field {
	var fields []Field
	add := func(key, value string) {
		if value != "" {
			fields = append(fields, Field{key, value})
		}
	}
	add("name", h.Name)
	if h.Hashed() {
		add("hashed", hashAlgorithm+" "+hex.EncodeToString(h.Salt))
	}
	add("issuer", h.Issuer)
	add("serial", strconv.FormatUint(h.Serial, 10))
	if !h.Issued.IsZero() {
		add("issued", h.Issued.Format(time.RFC3339))
	}
	if !h.Expires.IsZero() {
		add("expires", h.Expires.Format(time.RFC3339))
	}
	add("authority", h.Authority)
	add("appeal", h.Appeal)
	add("contact", strings.Join(h.Contact, " "))
	add("canary", h.Canary)
	return fields
}
