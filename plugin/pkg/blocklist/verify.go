package blocklist

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"aead.dev/minisign"
)

// SignatureSuffix is appended to a list's path to name its detached signature.
const SignatureSuffix = ".minisig"

// maxKeySize bounds a public key file: its two lines take about 100 bytes.
const maxKeySize = 4 << 10

// maxSignatureSize bounds the signature file we read; a minisign signature
// with generous comments is well under 1 KiB.
const maxSignatureSize = 64 << 10

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

// ReadPublicKey reads a minisign public key file, as written by
// "minisign -G" or "regblock keygen".
func ReadPublicKey(path string) (minisign.PublicKey, error) {
	var key minisign.PublicKey
	data, err := ReadFile(path, maxKeySize)
	if err != nil {
		return key, fmt.Errorf("blocklist: public key: %w", err)
	}
	if err := key.UnmarshalText(data); err != nil {
		return key, fmt.Errorf("blocklist: public key %s: not a minisign public key: %v", path, err)
	}
	return key, nil
}

// Verify checks that sig is a minisign signature of data by one of keys.
// Both prehashed (the minisign default) and legacy signatures verify.
func Verify(data, sig []byte, keys []minisign.PublicKey) error {
	s, key, err := signer(sig, keys)
	if err != nil {
		return err
	}
	if !minisign.Verify(key, data, sig) {
		return fmt.Errorf("signature by key %X does not match the list's contents", s.KeyID)
	}
	return nil
}

// signer decodes sig and returns the trusted key that made it.
func signer(sig []byte, keys []minisign.PublicKey) (minisign.Signature, minisign.PublicKey, error) {
	var s minisign.Signature
	if err := s.UnmarshalText(sig); err != nil {
		return s, minisign.PublicKey{}, fmt.Errorf("not a minisign signature: %v", err)
	}
	for _, key := range keys {
		if key.ID() == s.KeyID {
			return s, key, nil
		}
	}
	return s, minisign.PublicKey{}, fmt.Errorf("signed by key %X, which is not a trusted public key", s.KeyID)
}

// ReadSignature reads the signature of the list at path, path+".minisig".
// A missing signature is an error that wraps ErrNoSignature.
func ReadSignature(path string) ([]byte, error) {
	sigPath := path + SignatureSuffix
	sig, err := ReadFile(sigPath, maxSignatureSize)
	if errors.Is(err, os.ErrNotExist) {
		return nil, &LoadError{ReasonBadSignature, fmt.Errorf("%s: %w: %s is missing", path, ErrNoSignature, sigPath)}
	}
	return sig, err
}

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
	s, key, err := signer(sig, keys)
	if err != nil {
		return nil, &LoadError{ReasonBadSignature, fmt.Errorf("%s: %v", path+SignatureSuffix, err)}
	}
	if s.Algorithm != minisign.HashEdDSA || IsRPZ(path) {
		data, err := ReadFile(path, maxSize)
		if err != nil {
			return nil, err
		}
		return OpenFunc(path, data, sig, keys, fn)
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
	case !hashed.signed.Verify(key, sig):
		return nil, &LoadError{ReasonBadSignature, fmt.Errorf("%s: signature by key %X does not match the list's contents", path+SignatureSuffix, s.KeyID)}
	}
	hashed.sha.Sum(p.list.SHA256[:0])
	l, err := p.result()
	if err != nil {
		return nil, &LoadError{ReasonParseError, err}
	}
	return l, nil
}

// ErrNoSignature is wrapped by the error Read returns when a list has no
// signature file (yet): a list being published may arrive before its
// signature.
var ErrNoSignature = errors.New("no signature")

// Load reads the list at path and its signature at path+".minisig", verifies
// the signature against keys, and parses the list: Read, then Open.
func Load(path string, keys []minisign.PublicKey, maxSize int64) (*List, error) {
	data, sig, err := Read(path, maxSize)
	if err != nil {
		return nil, err
	}
	return Open(path, data, sig, keys)
}

// Read reads the list at path and its signature at path+".minisig". A list
// larger than maxSize bytes is rejected unread. Errors are *LoadError and
// name the file.
func Read(path string, maxSize int64) (data, sig []byte, err error) {
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
	return OpenFunc(path, data, sig, keys, nil)
}

// OpenFunc is Open with ParseFunc's fn: a nil fn keeps the entries.
func OpenFunc(path string, data, sig []byte, keys []minisign.PublicKey, fn func(Entry)) (*List, error) {
	if err := Verify(data, sig, keys); err != nil {
		return nil, &LoadError{ReasonBadSignature, fmt.Errorf("%s: %v", path+SignatureSuffix, err)}
	}
	l, err := parse(path, data, fn)
	if err != nil {
		return nil, &LoadError{ReasonParseError, err}
	}
	return l, nil
}

// ListSuffix ends the name of a list file in regblock's format.
const ListSuffix = ".list"

// IsList reports whether a file name is a list file: NAME.list, or an RPZ
// zone file NAME.rpz.
func IsList(name string) bool {
	return strings.HasSuffix(name, ListSuffix) && len(name) > len(ListSuffix) || IsRPZ(name)
}

// IsRPZ reports whether a file name is an RPZ zone file (NAME.rpz), read
// as a list in the RPZ format.
func IsRPZ(name string) bool {
	return strings.HasSuffix(name, RPZSuffix) && len(name) > len(RPZSuffix)
}

// TrimSuffix returns a list file's name without .list or .rpz.
func TrimSuffix(name string) string {
	if IsRPZ(name) {
		return strings.TrimSuffix(name, RPZSuffix)
	}
	return strings.TrimSuffix(name, ListSuffix)
}
