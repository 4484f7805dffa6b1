package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"aead.dev/minisign"

	"github.com/regblock/regblock/plugin/pkg/atomicfile"
	"github.com/regblock/regblock/plugin/pkg/blocklist"
	"github.com/regblock/regblock/plugin/pkg/minisig"
	"github.com/regblock/regblock/plugin/pkg/regularfile"
)

const signUsage = `Usage: regblock sign -s SEC [-bump | -append | -raw] [-password-file FILE] LIST...

Lints each list, refuses one with errors, and writes its signature
LIST.minisig (prehashed, as minisign -S makes it). With -bump, first raises
the list's serial by one and sets issued to now. With -append, adds the
signature to those already in LIST.minisig, for a list that needs several
signers (as 'cat a.minisig b.minisig' joins stock minisign's). Files are
replaced atomically, so a resolver watching the directory never reads half
a file. With -raw, signs any file as its bytes, unchecked (a release's
SHA256SUMS): stock minisign -V and 'regblock verify -raw' verify it.

Examples:
  regblock sign -s regulator.key -bump blocklists/example.list
  regblock sign -s judge.key -append blocklists/court-order.list
  regblock sign -s release.key -raw dist/SHA256SUMS

`

func sign(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("sign", signUsage, stderr)
	secPath := fs.String("s", "regblock.key", "secret key `file`")
	bump := fs.Bool("bump", false, "raise serial by one and set issued to now before signing")
	appendSig := fs.Bool("append", false, "add the signature to those in LIST.minisig instead of replacing them")
	passwordFile := fs.String("password-file", "", "read the secret key's password from `file`")
	raw := fs.Bool("raw", false, "sign any file as its bytes, not as a list or policy (unchecked)")
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	if code := require(fs,
		need{!*bump || !*appendSig, "-bump and -append exclude each other: -bump changes the list, which the signatures already made no longer match"},
		need{!*bump || !*raw, "-bump and -raw exclude each other: -raw leaves the file as it is"},
		need{fs.NArg() > 0, "no LIST to sign"},
	); code >= 0 {
		return code
	}
	key, err := readSecretKey(*secPath, *passwordFile)
	if err != nil {
		return fail(stderr, 1, err, "")
	}
	code := 0
	for _, path := range fs.Args() {
		if err := signList(path, key, *bump, *appendSig, *raw, stdout, stderr); err != nil {
			code = fail(stderr, 1, err, "")
		}
	}
	return code
}

func signList(path string, key minisign.PrivateKey, bump, appendSig, raw bool, stdout, stderr io.Writer) error {
	data, err := regularfile.Read(path, maxFileSize)
	if err != nil {
		return err
	}
	if raw {
		return writeSignature(path, data, key, appendSig, "file", stdout)
	}
	l, serial, what, err := describe(path, data)
	if err != nil {
		printErrors(stderr, err)
		return fmt.Errorf("%s: not signed: fix the errors above", path)
	}
	if bump && blocklist.IsDeltaData(data) {
		return fmt.Errorf("%s: -bump cannot change a delta, whose header is the new version's: make it again with regblock delta", path)
	}
	if bump && blocklist.IsRPZ(path) {
		return fmt.Errorf("%s: -bump rewrites regblock's list header; raise an RPZ zone's SOA serial in the zone itself", path)
	}
	if bump {
		if data, err = blocklist.Bump(data, serial+1, time.Now()); err != nil {
			return fmt.Errorf("%s: %v", path, err)
		}
		if l, _, what, err = describe(path, data); err != nil {
			return err
		}
	}
	if l != nil {
		if err := issuedAhead(l, data, time.Now()); err != nil {
			printErrors(stderr, err)
			return fmt.Errorf("%s: not signed: fix the errors above", path)
		}
		for _, w := range blocklist.Lint(l, time.Now()) {
			fmt.Fprintf(stderr, "%s:%d: warning: %s\n", path, w.Line, w.Msg)
		}
	}

	if bump {
		if err := atomicfile.Write(path, data, 0o644); err != nil {
			return err
		}
	}
	return writeSignature(path, data, key, appendSig, what, stdout)
}

// writeSignature signs data, the bytes of path, into path.minisig (beside
// the signatures there with appendSig), prehashed, as minisign -S does.
func writeSignature(path string, data []byte, key minisign.PrivateKey, appendSig bool, what string, stdout io.Writer) error {
	r := minisign.NewReader(bytes.NewReader(data))
	io.Copy(io.Discard, r)
	trusted := fmt.Sprintf("timestamp:%d\tfile:%s\thashed", time.Now().Unix(), filepath.Base(path))
	sig := r.SignWithComments(key, trusted, "signature from regblock secret key")
	sigPath := path + minisig.Suffix
	sig = append(sig, '\n')
	if appendSig {
		before, err := regularfile.Read(sigPath, minisig.MaxSize)
		switch {
		case errors.Is(err, os.ErrNotExist):
		case err != nil:
			return err
		case slices.Contains(minisig.KeyIDs(before), key.ID()):
			return fmt.Errorf("%s already holds a signature by key %X: a key counts once, nothing appended", sigPath, key.ID())
		default:
			if len(before) > 0 && before[len(before)-1] != '\n' {
				before = append(before, '\n')
			}
			sig = append(before, sig...)
		}
	}
	if err := atomicfile.Write(sigPath, sig, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: %s signed by key %X -> %s\n", path, what, key.ID(), sigPath)
	return nil
}

// printErrors prints each error of a list on its own line.
func printErrors(w io.Writer, err error) {
	if errs, ok := err.(blocklist.ErrorList); ok {
		for _, e := range errs {
			fmt.Fprintf(w, "%s: error: %s\n", location(e), e.Msg)
		}
		return
	}
	fmt.Fprintf(w, "regblock: error: %v\n", err)
}

func location(e *blocklist.Error) string {
	if e.Line == 0 {
		return e.File
	}
	return fmt.Sprintf("%s:%d", e.File, e.Line)
}
