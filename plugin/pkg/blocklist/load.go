package blocklist

import (
	"bufio"
	"fmt"
	"io"
	"slices"

	"aead.dev/minisign"

	"github.com/regblock/regblock/plugin/pkg/minisig"
	"github.com/regblock/regblock/plugin/pkg/regularfile"
	"github.com/regblock/regblock/plugin/pkg/result"
)

// OpenStream reads, verifies and parses the list at path, whose signature
// is sig, handing each entry to fn as ParseFunc does; the list must be at
// most maxSize bytes. With a prehashed signature (minisign's default) the
// file is never held whole: it streams through the signature's hash and the
// parser, and the signature is checked at its end, so fn sees the entries
// of a file that may turn out not to be signed: it must discard what it
// built when OpenStream returns an error. A legacy signature, and an RPZ
// zone, need the whole file, which is then read first. Errors are
// *result.Error; a bad signature is reported before any parse error.
func OpenStream(path string, maxSize int64, sig []byte, keys []minisign.PublicKey, fn func(Entry)) (*List, error) {
	signed, err := minisig.Trusted(sig, keys)
	if err != nil {
		return nil, &result.Error{Result: result.BadSignature, Err: fmt.Errorf("%s: %v", path+minisig.Suffix, err)}
	}
	if slices.ContainsFunc(signed, func(s minisig.Signature) bool { return !s.Hashed }) || IsRPZ(path) {
		data, err := regularfile.Read(path, maxSize)
		if err != nil {
			return nil, err
		}
		return openFunc(path, data, sig, keys, fn)
	}

	f, fi, err := regularfile.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi.Size() > maxSize {
		return nil, regularfile.TooLarge(path, maxSize)
	}
	limited := &io.LimitedReader{R: f, N: maxSize + 1}
	hashed := newHashAside(limited)
	src := &readerLines{r: bufio.NewReaderSize(hashed, 64<<10)}
	p := parser{list: &List{File: path}, seen: map[string]int{}, emit: fn}
	p.parseLines(src)
	if src.err == nil {
		// The parser may stop early; the signature covers the whole file.
		_, src.err = io.Copy(io.Discard, src.r)
	}
	hashed.finish()
	switch {
	case src.err != nil:
		return nil, &result.Error{Result: result.IOError, Err: fmt.Errorf("%s: %w", path, src.err)}
	case limited.N <= 0:
		return nil, regularfile.TooLarge(path, maxSize)
	}
	// The file was hashed once; each signature is checked against that.
	signers, err := minisig.Verified(signed, func(s minisig.Signature) bool { return hashed.signed.Verify(s.Key, s.Text) })
	if err != nil {
		return nil, &result.Error{Result: result.BadSignature, Err: fmt.Errorf("%s: %v", path+minisig.Suffix, err)}
	}
	hashed.sha.Sum(p.list.SHA256[:0])
	l, err := p.result()
	if err != nil {
		return nil, &result.Error{Result: result.ParseError, Err: err}
	}
	l.Signers = signers
	return l, nil
}

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
// larger than maxSize bytes is rejected unread. Errors are *result.Error and
// name the file.
func read(path string, maxSize int64) (data, sig []byte, err error) {
	data, err = regularfile.Read(path, maxSize)
	if err != nil {
		return nil, nil, err
	}
	if sig, err = minisig.Read(path); err != nil {
		return nil, nil, err
	}
	return data, sig, nil
}

// Open verifies that sig is a signature of data by one of keys, then parses
// data, read from path. Errors are *result.Error.
func Open(path string, data, sig []byte, keys []minisign.PublicKey) (*List, error) {
	return openFunc(path, data, sig, keys, nil)
}

// openFunc is Open with ParseFunc's fn: a nil fn keeps the entries.
func openFunc(path string, data, sig []byte, keys []minisign.PublicKey, fn func(Entry)) (*List, error) {
	signers, err := minisig.Verify(data, sig, keys)
	if err != nil {
		return nil, &result.Error{Result: result.BadSignature, Err: fmt.Errorf("%s: %v", path+minisig.Suffix, err)}
	}
	l, err := parse(path, data, fn)
	if err != nil {
		return nil, &result.Error{Result: result.ParseError, Err: err}
	}
	l.Signers = signers
	return l, nil
}
