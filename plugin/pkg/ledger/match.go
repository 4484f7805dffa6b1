package ledger

import (
	"fmt"
	"time"
)

// Commitment is what a resolver's signed receipt says of its ledger: at
// Time, Events ledger events had been sealed, the last hashing to Head.
type Commitment struct {
	Time   time.Time
	Head   string
	Events uint64
}

// Matched is what Match found.
type Matched struct {
	// Offset is the count of ledger events before the first line given,
	// when a commitment placed the lines among all the resolver's events
	// (Placed); the lines given are events Offset+1 to Offset+len(lines).
	Offset uint64
	Placed bool
	// Checked counts the commitments that the lines bear out.
	Checked int
	// Problems says, one a line, which commitments the lines contradict
	// and how, naming the file and line where there is one.
	Problems []string
}

// Match checks ledger lines (in chain order, as CheckLines returns them)
// against a resolver's commitments: every commitment to N events must find
// its event N among the lines, hashing to what it committed to, at the
// place the other commitments give it. Each commitment names its event by
// hash, which places the lines among all the resolver's ledger events
// without taking the ledger's word (its .head) for how many came before
// them. Commitments to no event (receipts sent without an audit log) are
// passed over.
func Match(lines []Line, cs []Commitment) Matched {
	at := make(map[string]int, len(lines))
	for i, l := range lines {
		at[l.Hash] = i
	}
	var m Matched
	for _, c := range cs {
		if i, ok := at[c.Head]; ok && c.Events > uint64(i) {
			m.Offset, m.Placed = c.Events-uint64(i)-1, true
			break
		}
	}
	for _, c := range cs {
		n := c.Events
		if n == 0 {
			continue
		}
		when := c.Time.Format(time.RFC3339)
		i, found := at[c.Head]
		switch {
		case found && uint64(i)+1+m.Offset == n:
			m.Checked++
		case found:
			m.Problems = append(m.Problems, fmt.Sprintf("%s:%d holds what the receipt of %s committed to as ledger event %d, but by the other receipts it is event %d: ledger lines were added or removed before it",
				lines[i].File, lines[i].Line, when, n, uint64(i)+1+m.Offset))
		case n <= m.Offset:
			m.Problems = append(m.Problems, fmt.Sprintf("the receipt of %s commits to ledger event %d, before the first line given (event %d): give the rotated files that hold it, or the lines were removed",
				when, n, m.Offset+1))
		case n > m.Offset+uint64(len(lines)):
			m.Problems = append(m.Problems, fmt.Sprintf("the receipt of %s commits to %d ledger events, but the files given end at event %d: ledger lines at the end were removed (the head was cut)",
				when, n, m.Offset+uint64(len(lines))))
		default:
			l := lines[n-m.Offset-1]
			m.Problems = append(m.Problems, fmt.Sprintf("%s:%d: ledger event %d hashes to %.12s…, but the receipt of %s committed to %.12s…: the ledger was edited or rewritten up to here",
				l.File, l.Line, n, l.Hash, when, c.Head))
		}
	}
	return m
}
