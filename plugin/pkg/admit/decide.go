package admit

import (
	"fmt"
	"time"

	"github.com/regblock/regblock/plugin/pkg/blocklist"
	"github.com/regblock/regblock/plugin/pkg/result"
)

// ErrRollback is wrapped by Decide's error for a version older than the
// one in force, or of the same serial with other bytes.
var ErrRollback = result.New(result.Rollback, "rollback")

// ErrFromTheFuture is wrapped by Decide's error for a version issued more
// than MaxClockSkew after now: applied, it would make the enforcement
// delay negative, which hides the alert on a late list.
var ErrFromTheFuture = result.New(result.ParseError, "issued in the future") // the header is wrong

// MaxClockSkew is how far ahead of this machine's clock a list's issue
// time may be.
const MaxClockSkew = 5 * time.Minute

// Mark is the high-water mark of a list name: the highest serial ever
// accepted under it, the digest of that version's bytes, and the keys
// that signed it (each the base64 line of a minisign public key), so that
// a new trust policy can tell whether they still may.
type Mark struct {
	Serial  uint64
	SHA256  [32]byte
	Signers []string
}

// MarkOf returns the mark l sets.
func MarkOf(l *blocklist.List) *Mark {
	m := &Mark{Serial: l.Serial, SHA256: l.SHA256}
	for _, k := range l.Signers {
		m.Signers = append(m.Signers, k.String())
	}
	return m
}

// Decide says whether next, a verified version of a list, may be applied
// at time now, given the version in force under its name (nil when none
// is) and the list name's high-water mark (nil when no version was ever
// accepted): unchanged when it has the bytes of the version in force; an
// error wrapping ErrRollback when its serial is below the mark, or at the
// mark with other bytes (a published serial never changes), whatever file
// it comes from and whether or not a version is in force; one wrapping
// ErrFromTheFuture when it was issued more than MaxClockSkew after now; and
// nil when it is to be applied. The resolver, the notice server and sync
// all ask it, so that all three accept the same versions.
func Decide(inForce *blocklist.List, mark *Mark, next *blocklist.List, now time.Time) (unchanged bool, err error) {
	switch {
	case inForce != nil && inForce.SHA256 == next.SHA256:
		return true, nil
	case next.Issued.After(now.Add(MaxClockSkew)):
		return false, fmt.Errorf("%s: %w: list %q serial %d says it was issued at %s, %v after this machine's clock (at most %v is allowed)",
			next.File, ErrFromTheFuture, next.Name, next.Serial, next.Issued.Format(time.RFC3339), next.Issued.Sub(now).Round(time.Second), MaxClockSkew)
	case inForce != nil && next.Serial <= inForce.Serial:
		return false, fmt.Errorf("%s: %w: list %q serial %d is not newer than serial %d in force (a published serial never changes)",
			next.File, ErrRollback, next.Name, next.Serial, inForce.Serial)
	case mark.Above(next):
		return false, fmt.Errorf("%s: %w: list %q serial %d is below serial %d, the highest ever accepted for the list (or that serial with other bytes)",
			next.File, ErrRollback, next.Name, next.Serial, mark.Serial)
	}
	return false, nil
}

// Above reports whether l is below mark m, or at it with other bytes: a
// rollback, whatever file it comes from. A nil mark is above nothing.
func (m *Mark) Above(l *blocklist.List) bool {
	return m != nil && (l.Serial < m.Serial || l.Serial == m.Serial && l.SHA256 != m.SHA256)
}
