// Package admit decides whether a version of a list may be enforced. It
// is the one road every reader of lists takes (the resolver's scans and
// restores, the notice server, sync, audit and verify), so that all accept
// exactly the same versions:
//
//	Open:   the signature file, then the list streaming once through the
//	        signature's hash and the parser (the signature is checked at
//	        its end, before the result is used), then the signers judged
//	        by the trusted keys or the trust policy's line for the list;
//	Decide: against the version in force and the list's high-water mark
//	        (unchanged, a rollback, issued in the future, or to apply).
//
// Errors are *result.Error, or wrap one, and name the file.
package admit

import (
	"fmt"

	"aead.dev/minisign"

	"github.com/regblock/regblock/plugin/pkg/blocklist"
	"github.com/regblock/regblock/plugin/pkg/minisig"
	"github.com/regblock/regblock/plugin/pkg/regularfile"
	"github.com/regblock/regblock/plugin/pkg/trust"
)

// Judge says who may sign a list: the trusted keys alone, or the lines of
// a trust policy.
type Judge struct {
	keys     []minisign.PublicKey
	policy   *trust.Policy
	byPolicy bool
}

// ByKeys judges lists by keys: a valid signature by any of them will do.
func ByKeys(keys []minisign.PublicKey) Judge { return Judge{keys: keys} }

// ByPolicy judges lists by the trust policy p: its line for a list's name
// says which keys sign it, how many must, and which issuer it may claim.
// A nil p refuses every list: a policy is configured but none is in force
// yet.
func ByPolicy(p *trust.Policy) Judge { return Judge{policy: p, byPolicy: true} }

// Policy returns the policy j judges by, or nil.
func (j Judge) Policy() *trust.Policy { return j.policy }

// ErrNoPolicy refuses every list while a trust policy is configured and
// none is in force yet.
var ErrNoPolicy = fmt.Errorf("%w: no trust policy is in force yet", trust.ErrUntrusted)

// Keys returns the keys a list's signatures are verified against: the
// trusted keys, or every key of the policy's list lines.
func (j Judge) Keys() []minisign.PublicKey {
	switch {
	case !j.byPolicy:
		return j.keys
	case j.policy == nil:
		return nil
	}
	return j.policy.ListKeys()
}

// Check judges l, a verified list, by the policy: the line for its name
// and that line's threshold, and the issuer the line grants (set on l).
// Without a policy every verified list passes.
func (j Judge) Check(l *blocklist.List) error {
	switch {
	case !j.byPolicy:
		return nil
	case j.policy == nil:
		return fmt.Errorf("%s: %w", l.File, ErrNoPolicy)
	}
	if err := j.policy.Judge(l.Name, l.Issuer, l.Signers); err != nil {
		return fmt.Errorf("%s: %w", l.File, err)
	}
	j.policy.Grant(l)
	return nil
}

// Version is a version of a list read, verified and judged: what Decide
// is asked about.
type Version struct {
	List *blocklist.List
	Sig  []byte // its signature file's text, for a saved copy
}

// Open reads the list at path (at most maxSize bytes) and its signature,
// verifies it and judges its signers by j. Each entry goes to add as it is
// parsed (nil keeps them in the list): add sees the entries of a file
// whose signature is checked only at its end, so what it built must be
// thrown away when Open fails. A missing signature file is an error
// wrapping minisig.ErrNoSignature.
func Open(path string, maxSize int64, j Judge, add func(blocklist.Entry)) (*Version, error) {
	sig, err := minisig.Read(path)
	if err != nil {
		return nil, err
	}
	return Verify(path, sig, maxSize, j, add)
}

// Verify is Open with the signature file's text given: of a version
// fetched, whose signature is not beside it yet.
func Verify(path string, sig []byte, maxSize int64, j Judge, add func(blocklist.Entry)) (*Version, error) {
	if j.byPolicy && j.policy == nil {
		return nil, fmt.Errorf("%s: %w", path, ErrNoPolicy)
	}
	l, err := blocklist.OpenStream(path, maxSize, sig, j.Keys(), add)
	if err != nil {
		return nil, err
	}
	if err := j.Check(l); err != nil {
		return nil, &Rejected{l, err}
	}
	return &Version{List: l, Sig: sig}, nil
}

// Rejected is Open's error for a list that verified but whose signers may
// not sign it (Judge.Check): List says which list and version it is.
type Rejected struct {
	List *blocklist.List
	Err  error
}

func (e *Rejected) Error() string { return e.Err.Error() }
func (e *Rejected) Unwrap() error { return e.Err }

// DeltaVersion is a delta read, verified and judged: Decide is asked
// about the version it makes (Delta.List).
type DeltaVersion struct {
	Delta     *blocklist.Delta
	Data, Sig []byte // the delta file and its signature file, for a saved copy
}

// OpenDelta reads the delta at path (at most maxSize bytes) and its
// signature, verifies it and judges its signers by j as Open does a list:
// the trust policy's line for the list the delta changes says who signs
// it. A missing signature file is an error wrapping minisig.ErrNoSignature.
func OpenDelta(path string, maxSize int64, j Judge) (*DeltaVersion, error) {
	sig, err := minisig.Read(path)
	if err != nil {
		return nil, err
	}
	if j.byPolicy && j.policy == nil {
		return nil, fmt.Errorf("%s: %w", path, ErrNoPolicy)
	}
	// Verified as a stream before it is read whole: a junk file as large
	// as maxSize costs a read, not that much memory.
	if err := blocklist.CheckSigned(path, maxSize, sig, j.Keys()); err != nil {
		return nil, err
	}
	data, err := regularfile.Read(path, maxSize)
	if err != nil {
		return nil, err
	}
	return VerifyDelta(path, data, sig, j)
}

// VerifyDelta is OpenDelta with the delta and its signature file's text
// given, of a delta fetched: path only names it in errors.
func VerifyDelta(path string, data, sig []byte, j Judge) (*DeltaVersion, error) {
	if j.byPolicy && j.policy == nil {
		return nil, fmt.Errorf("%s: %w", path, ErrNoPolicy)
	}
	d, err := blocklist.OpenDelta(path, data, sig, j.Keys())
	if err != nil {
		return nil, err
	}
	if err := j.Check(d.List); err != nil {
		return nil, &Rejected{d.List, err}
	}
	return &DeltaVersion{Delta: d, Data: data, Sig: sig}, nil
}
