package blocklist

import (
	"fmt"
	"strings"
	"time"
)

// Warning is something an issuer wants to know about a valid list.
type Warning struct {
	Line int
	Msg  string
}

// Lint returns warnings about a parsed list: duplicate entries, entries a
// broader entry already blocks, exceptions that unblock nothing, and an
// expiry in the past (at now) or before the issue time. Of a hashed list's
// entries, it finds only duplicates.
func Lint(l *List, now time.Time) []Warning {
	var ws []Warning
	if !l.Expires.IsZero() {
		if l.Expires.Before(l.Issued) {
			ws = append(ws, Warning{1, fmt.Sprintf("expires %s is before issued %s", l.Expires.Format(time.RFC3339), l.Issued.Format(time.RFC3339))})
		} else if l.Expires.Before(now) {
			ws = append(ws, Warning{1, fmt.Sprintf("expires %s is already past", l.Expires.Format(time.RFC3339))})
		}
	}

	byName := map[string][]Entry{} // entries at each name, first occurrence of each kind
	for _, e := range l.Entries {
		key := strings.TrimPrefix(e.Pattern(), e.Kind.Prefix()) // the name, digest or prefix
		for _, prev := range byName[key] {
			if prev.Kind == e.Kind {
				ws = append(ws, Warning{e.Line, fmt.Sprintf("duplicate entry %s (also on line %d)", e.Pattern(), prev.Line)})
			}
		}
		byName[key] = append(byName[key], e)
	}
	find := func(name string, k Kind) (Entry, bool) {
		for _, e := range byName[name] {
			if e.Kind == k {
				return e, true
			}
		}
		return Entry{}, false
	}
	// blockedFromAbove returns the entry that decides, for the names below
	// name, among the entries at name's ancestors; ok is false when none
	// does or an exception does.
	blockedFromAbove := func(name string) (Entry, bool) {
		for parent := name; ; {
			i := strings.IndexByte(parent, '.')
			if i < 0 {
				return Entry{}, false
			}
			parent = parent[i+1:]
			if e, ok := find(parent, Below); ok {
				return e, true
			}
			if _, ok := find(parent, Exception); ok {
				return Entry{}, false
			}
			if e, ok := find(parent, Subtree); ok {
				return e, true
			}
		}
	}

	for _, e := range l.Entries {
		if e.Prefix.IsValid() || e.Hashed { // a digest does not say which names are above it
			continue
		}
		switch e.Kind {
		case ExceptExact, ExceptBelow:
			continue // RPZ passthrus, and the stops of RPZ wildcards
		case Exception:
			if _, ok := find(e.Name, Subtree); ok {
				continue
			}
			if _, ok := blockedFromAbove(e.Name); !ok {
				ws = append(ws, Warning{e.Line, fmt.Sprintf("exception %s unblocks nothing: no entry of this list blocks %s", e.Pattern(), e.Name)})
			}
		default:
			if e.Kind != Subtree {
				if by, ok := find(e.Name, Subtree); ok {
					if _, except := find(e.Name, Exception); !except {
						ws = append(ws, Warning{e.Line, fmt.Sprintf("entry %s is already blocked by %s (line %d)", e.Pattern(), by.Pattern(), by.Line)})
						continue
					}
				}
			}
			if _, except := find(e.Name, Exception); except {
				continue
			}
			if by, ok := blockedFromAbove(e.Name); ok {
				ws = append(ws, Warning{e.Line, fmt.Sprintf("entry %s is already blocked by %s (line %d)", e.Pattern(), by.Pattern(), by.Line)})
			}
		}
	}
	return ws
}
