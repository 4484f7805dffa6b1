package listset

import (
	"runtime/debug"
	"time"

	"github.com/regblock/regblock/plugin/pkg/blockindex"
	"github.com/regblock/regblock/plugin/pkg/result"
	"github.com/regblock/regblock/plugin/pkg/trust"
)

// Kind says what a Change is.
type Kind uint8

// The kinds of Change, and the fields each sets.
const (
	// Applied: List was put in force; Swap is the time the index holding
	// it took to build.
	Applied Kind = iota
	// Unchanged: a list file held the version in force of list Name.
	// List, when set, is that file's whole version put in force in place
	// of the chain of deltas that made it: its entries are the file's,
	// which the chain's may not have been (a delta_mismatch before).
	Unchanged
	// Refused: Refusal, a version that was refused; the version in force,
	// if any, stays.
	Refused
	// Removed: List was taken out of force, for the reason Why.
	Removed
	// Moved: List, still in force, is now read from List.Path, not From.
	Moved
	// Expired: List expired; it stays in force until replaced.
	Expired
	// PolicyApplied: Policy was put in force.
	PolicyApplied
	// PolicyRefused: a version of the trust policy at Path was refused
	// (Result, Err); Policy, the one in force if any, stays.
	PolicyRefused
	// PolicyExpired: Policy, in force, expired.
	PolicyExpired
	// Waiting: Path is a list file whose signature has not come (once).
	Waiting
	// Problem: Err refuses nothing, such as a state directory that cannot
	// be written.
	Problem
	// Unsaved: the number of things the state directory has yet to keep
	// (high-water marks, copies of versions in force, the policy) is now
	// N; until they are kept a restart could enforce an older version.
	Unsaved
)

// Change is one thing a Set decided. Only the fields its Kind names are
// set.
type Change struct {
	Kind    Kind
	Time    time.Time // when it was decided, by the Set's clock
	List    *Current
	Refusal Rejection
	Policy  *trust.Policy
	Name    string
	Path    string
	From    string
	Why     string
	Result  result.Result
	Err     error
	Swap    time.Duration
	N       int
}

// note adds a change to those the next commit records.
func (s *Set) note(c Change) {
	c.Time = s.Now()
	s.changes = append(s.changes, c)
}

// commit records, in order, the changes noted since the last commit, and
// then publishes ix when it is not nil. By then the state directory keeps
// what it could of them: whoever sees a block by a version finds that
// version in the state directory, the ledger, the metrics and the log.
func (s *Set) commit(ix *blockindex.Index) {
	changes := s.changes
	s.changes = nil
	applied := false
	for _, c := range changes {
		s.record(c)
		applied = applied || c.Kind == Applied
	}
	// A list removed leaves the state directory once its removal is on
	// the record, unless a version of it went back in force meanwhile.
	for _, c := range changes {
		if c.Kind != Removed || s.cfg.State == "" || s.inForce[c.List.List.Name] != nil {
			continue
		}
		if err := stateDir(s.cfg.State).remove(c.List.List.Name); err != nil {
			s.record(Change{Kind: Problem, Time: s.Now(), Err: err})
		}
	}
	if ix == nil {
		return
	}
	s.publish(ix)
	if applied {
		// Reading and parsing a list takes several times the memory its
		// index keeps; hand that back to the system now rather than let the
		// process stay at its peak size. Reloads are rare; the collection
		// this forces is off the query path, after the list is recorded.
		debug.FreeOSMemory()
	}
}
