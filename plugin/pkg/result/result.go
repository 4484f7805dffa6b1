// Package result names what became of a version of a list or of the trust
// policy when it was read: applied, unchanged, or refused and why. Its
// values are the result label of the reload and sync metrics, the ledger's
// reasons and the words of the logs, so every reader of lists (the
// resolver, the notice server, sync, the toolkit) reports a refusal the
// same way.
package result

import (
	"errors"
	"fmt"
)

// Result is what became of a version that was read.
type Result string

// The results. A refusal keeps the version in force, if any.
const (
	Applied      Result = "applied"
	Unchanged    Result = "unchanged"     // the bytes of the version in force
	BadSignature Result = "bad_signature" // missing, malformed, or by no trusted key
	ParseError   Result = "parse_error"   // signed, but not a valid list
	TooLarge     Result = "too_large"     // over the size limit
	IOError      Result = "io_error"      // could not be read
	Rollback     Result = "rollback"      // older than a version once accepted
	Untrusted    Result = "untrusted"     // no line of the trust policy names the list
	Threshold    Result = "threshold"     // too few valid signatures by its line's keys
	// A delta that does not start from the version in force.
	DeltaBase Result = "delta_base"
	// A delta whose result is not the issuer's version (its digest header).
	DeltaMismatch Result = "delta_mismatch"
)

// Error is a refusal: its result, and the error that says what is wrong
// and where (the file, and the line when there is one).
type Error struct {
	Result Result
	Err    error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with result r and a message formatted as
// fmt.Errorf does (%w wraps).
func Errorf(r Result, format string, args ...any) error {
	return &Error{r, fmt.Errorf(format, args...)}
}

// New returns a sentinel *Error with result r, for errors.Is.
func New(r Result, text string) *Error { return &Error{r, errors.New(text)} }

// Of returns the result err stands for: that of the outermost *Error it
// wraps, or io_error for any other error.
func Of(err error) Result {
	var e *Error
	if errors.As(err, &e) {
		return e.Result
	}
	return IOError
}
