// Package blocklist reads regblock's signed list format: a header of "#!"
// lines followed by one entry a line, with a detached minisign signature.
//
// The format is specified in DESIGN.md ("The list file"). A list is accepted
// whole or not at all: Parse reports every error it finds, each naming the file
// and line, and returns no list when there is one.
package blocklist

import (
	"crypto/sha256"
	"time"
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
)

// Prefix returns the pattern prefix of k as written in a list file.
func (k Kind) Prefix() string {
	switch k {
	case Below:
		return "*."
	case Exact:
		return "="
	case Exception:
		return "!"
	}
	return ""
}

// CategoryCanary is the category reported for a hit on a list's canary name.
const CategoryCanary = "canary"

// Entry is one line of a list.
type Entry struct {
	Kind Kind
	// Name is canonical: lower case ASCII (punycode), no trailing dot.
	Name string
	// Order is the order reference, empty when absent ("-").
	Order string
	// Category is empty when absent.
	Category string
	// Line is the entry's line number in its file, from 1.
	Line int
}

// Pattern returns the entry as written in canonical form, e.g. "*.bulk.example".
func (e Entry) Pattern() string { return e.Kind.Prefix() + e.Name }

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
}

// List is a parsed list.
type List struct {
	Header
	Entries []Entry
	// File is the path the list was read from, used in messages.
	File string
	// SHA256 is the digest of the list file's exact bytes.
	SHA256 [sha256.Size]byte

	blocking int // Blocking's count once DropEntries has run
}

// Blocking returns the number of entries that block (exceptions excluded).
func (l *List) Blocking() int {
	if l.Entries == nil {
		return l.blocking
	}
	n := 0
	for _, e := range l.Entries {
		if e.Kind != Exception {
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
