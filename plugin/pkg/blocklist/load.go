package blocklist

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"slices"

	"aead.dev/minisign"
)

// Reason says why a list was rejected. Its values are the `result` label of
// the coredns_regblock_reloads_total metric.
type Reason string

// Reasons a list is rejected.
const (
	ReasonBadSignature Reason = "bad_signature"
	ReasonParseError   Reason = "parse_error"
	ReasonTooLarge     Reason = "too_large"
	ReasonIOError      Reason = "io_error"
)

// LoadError is the error Load returns: the reason, and the error that says
// what is wrong and where.
type LoadError struct {
	Reason Reason
	Err    error
}

func (e *LoadError) Error() string { return e.Err.Error() }
func (e *LoadError) Unwrap() error { return e.Err }

// OpenStream reads, verifies and parses the list at path, whose signature
// is sig, handing each entry to fn as ParseFunc does; the list must be at
// most maxSize bytes. With a prehashed signature (minisign's default) the
// file is never held whole: it streams through the signature's hash and the
// parser, and the signature is checked at its end, so fn sees the entries
// of a file that may turn out not to be signed: it must discard what it
// built when OpenStream returns an error. A legacy signature, and an RPZ
// zone, need the whole file, which is then read first. Errors are
// *LoadError; a bad signature is reported before any parse error.
func OpenStream(path string, maxSize int64, sig []byte, keys []minisign.PublicKey, fn func(Entry)) (*List, error) {
	signed, err := trustedSignatures(sig, keys)
	if err != nil {
		return nil, &LoadError{ReasonBadSignature, fmt.Errorf("%s: %v", path+SignatureSuffix, err)}
	}
	if slices.ContainsFunc(signed, func(s signature) bool { return !s.hashed }) || IsRPZ(path) {
		data, err := ReadFile(path, maxSize)
		if err != nil {
			return nil, err
		}
		return openFunc(path, data, sig, keys, fn)
	}

	f, fi, err := OpenFile(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi.Size() > maxSize {
		return nil, tooLarge(path, maxSize)
	}
	limited := &io.LimitedReader{R: f, N: maxSize + 1}
	hashed := newHashAside(limited)
	src := &readerLines{r: bufio.NewReaderSize(hashed, 64<<10)}
	p := parser{list: &List{File: path}, seen: map[string]bool{}, emit: fn}
	p.parseLines(src)
	if src.err == nil {
		// The parser may stop early; the signature covers the whole file.
		_, src.err = io.Copy(io.Discard, src.r)
	}
	hashed.finish()
	switch {
	case src.err != nil:
		return nil, &LoadError{ReasonIOError, fmt.Errorf("%s: %w", path, src.err)}
	case limited.N <= 0:
		return nil, tooLarge(path, maxSize)
	}
	// The file was hashed once; each signature is checked against that.
	signers, err := verified(signed, func(s signature) bool { return hashed.signed.Verify(s.key, s.text) })
	if err != nil {
		return nil, &LoadError{ReasonBadSignature, fmt.Errorf("%s: %v", path+SignatureSuffix, err)}
	}
	hashed.sha.Sum(p.list.SHA256[:0])
	l, err := p.result()
	if err != nil {
		return nil, &LoadError{ReasonParseError, err}
	}
	l.Signers = signers
	return l, nil
}

// ErrNoSignature is wrapped by the error Read returns when a list has no
// signature file (yet): a list being published may arrive before its
// signature.
var ErrNoSignature = errors.New("no signature")

// Load reads the list at path and its signature at path+".minisig", verifies
// the signature against keys, and parses the list.
func Load(path string, keys []minisign.PublicKey, maxSize int64) (*List, error) {
	data, sig, err := read(path, maxSize)
	if err != nil {
		return nil, err
	}
	return Open(path, data, sig, keys)
}

// read reads the list at path and its signature at path+".minisig". A list
// larger than maxSize bytes is rejected unread. Errors are *LoadError and
// name the file.
func read(path string, maxSize int64) (data, sig []byte, err error) {
	data, err = ReadFile(path, maxSize)
	if err != nil {
		return nil, nil, err
	}
	if sig, err = ReadSignature(path); err != nil {
		return nil, nil, err
	}
	return data, sig, nil
}

// Open verifies that sig is a signature of data by one of keys, then parses
// data, read from path. Errors are *LoadError.
func Open(path string, data, sig []byte, keys []minisign.PublicKey) (*List, error) {
	return openFunc(path, data, sig, keys, nil)
}

// openFunc is Open with ParseFunc's fn: a nil fn keeps the entries.
func openFunc(path string, data, sig []byte, keys []minisign.PublicKey, fn func(Entry)) (*List, error) {
	signers, err := Verify(data, sig, keys)
	if err != nil {
		return nil, &LoadError{ReasonBadSignature, fmt.Errorf("%s: %v", path+SignatureSuffix, err)}
	}
	l, err := parse(path, data, fn)
	if err != nil {
		return nil, &LoadError{ReasonParseError, err}
	}
	l.Signers = signers
	return l, nil
}
