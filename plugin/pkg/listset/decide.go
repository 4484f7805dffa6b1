package listset

import (
	"errors"
	"fmt"

	"github.com/regblock/regblock/plugin/pkg/blocklist"
)

// Results of reading a list version, besides the blocklist.Reason values.
const (
	ResultApplied   = "applied"
	ResultUnchanged = "unchanged"
	ResultRollback  = "rollback"
)

// ErrRollback is wrapped by Decide's error for a version older than the
// one in force, or of the same serial with other bytes.
var ErrRollback = errors.New("rollback")

// Decide says whether next, a verified version of the list inForce (nil
// when none is in force), may replace it: unchanged when it has the same
// bytes, an error wrapping ErrRollback when its serial is not higher (a
// published serial never changes), and nil when it is to be applied. The
// resolver, the notice server and sync all ask it, so that all three
// accept the same versions.
func Decide(inForce, next *blocklist.List) (unchanged bool, err error) {
	switch {
	case inForce == nil:
		return false, nil
	case inForce.SHA256 == next.SHA256:
		return true, nil
	case next.Serial <= inForce.Serial:
		return false, fmt.Errorf("%s: %w: list %q serial %d is not newer than serial %d in force (a published serial never changes)",
			next.File, ErrRollback, next.Name, next.Serial, inForce.Serial)
	}
	return false, nil
}

// Result returns the reload result an error stands for: rollback, the
// reason of a *blocklist.LoadError, or io_error for anything else. It is
// the result label of the reload and sync metrics.
func Result(err error) string {
	var le *blocklist.LoadError
	switch {
	case errors.Is(err, ErrRollback):
		return ResultRollback
	case errors.As(err, &le):
		return string(le.Reason)
	}
	return string(blocklist.ReasonIOError)
}
