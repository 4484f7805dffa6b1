package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/regblock/regblock/plugin/pkg/atomicfile"
	"github.com/regblock/regblock/plugin/pkg/blocklist"
)

const hashUsage = `Usage: regblock hash [-salt HEX] -o OUT PLAIN

Writes the confidential (hashed) form of a plain list: the same header with
a "hashed: sha256 SALT" line, and each name entry as h:DIGEST, the first 128
bits of SHA-256(salt ‖ name). Address entries, order references and
categories stay as they are; comments are left out (they may name sites).
Resolvers enforce the hashed list as they would the plain one, and no file
on their side holds a listed name.

The salt is 32 fresh random bytes unless -salt gives them (64 hex digits).
A new salt for each version makes the digests of one version say nothing
about the next, but each version is then a whole list: a delta needs both
versions under one salt. To publish deltas, hash the next version with the
salt of the one before (-salt), and draw a new salt now and then (that
version is published whole). Sign OUT as any list; keep PLAIN for the
auditors (regblock verify-hashed PLAIN OUT shows that OUT is its hash).

Example:
  regblock hash -o lists/worst-of.list worst-of.plain.list
  regblock sign -s regulator.key lists/worst-of.list

`

func hashCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("hash", hashUsage, stderr)
	saltHex := fs.String("salt", "", "the salt, 32 bytes as 64 `hex` digits (default: random)")
	out := fs.String("o", "", "write the hashed list to `FILE`")
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	if code := require(fs,
		need{*out != "", "-o is required: the file to write the hashed list to"},
		need{fs.NArg() == 1, "want one PLAIN list; got " + gotArgs(fs)},
	); code >= 0 {
		return code
	}
	path := fs.Arg(0)
	if same(path, *out) {
		return fail(stderr, 2, fmt.Errorf("-o %s is the plain list itself", *out), "write the hashed list to another file: the plain one is the auditors' reference")
	}
	salt := make([]byte, blocklist.SaltSize)
	if *saltHex != "" {
		var err error
		if salt, err = hex.DecodeString(*saltHex); err != nil || len(salt) != blocklist.SaltSize {
			return fail(stderr, 2, fmt.Errorf("-salt %q is not %d bytes in hex", *saltHex, blocklist.SaltSize), "")
		}
	} else if _, err := rand.Read(salt); err != nil {
		return fail(stderr, 1, err, "")
	}
	plain, err := parseFile(path, stderr)
	if err != nil {
		return fail(stderr, 1, err, "")
	}
	if blocklist.IsRPZ(path) {
		return fail(stderr, 1, fmt.Errorf("%s is an RPZ zone: only lists in regblock's format can be hashed", path), "")
	}
	hashed, err := blocklist.Hash(plain, salt)
	if err != nil {
		return fail(stderr, 1, err, "")
	}
	var buf bytes.Buffer
	if err := blocklist.Write(&buf, hashed); err != nil {
		return fail(stderr, 1, err, "")
	}
	if err := atomicfile.Write(*out, buf.Bytes(), 0o644); err != nil {
		return fail(stderr, 1, err, "")
	}
	fmt.Fprintf(stdout, "%s: list %q serial %d hashed: %d blocking entries, salt %x\n", *out, hashed.Name, hashed.Serial, hashed.Blocking(), salt)
	return 0
}

// same reports whether two paths name one existing file (through links
// too).
func same(a, b string) bool {
	fa, errA := os.Stat(a)
	fb, errB := os.Stat(b)
	return errA == nil && errB == nil && os.SameFile(fa, fb)
}

const verifyHashedUsage = `Usage: regblock verify-hashed PLAIN HASHED

Checks that HASHED is exactly the hashed form of PLAIN: the same header
(but for the salt) and, under HASHED's salt, the digest of each entry of
PLAIN with its kind, order reference and category, and nothing else. The
order of the entries does not matter. It is the check a regulator's
auditors make, holding the plain list, on the hashed list resolvers
enforce. It does not check signatures (regblock verify does).

Exit status: 0 HASHED is the hash of PLAIN, 1 it is not (each difference
is printed), 2 could not check.

Example:
  regblock verify-hashed worst-of.plain.list lists/worst-of.list

`

func verifyHashed(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("verify-hashed", verifyHashedUsage, stderr)
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	if code := require(fs, need{fs.NArg() == 2, "want PLAIN and HASHED; got " + gotArgs(fs)}); code >= 0 {
		return code
	}
	plain, err := parseFile(fs.Arg(0), stderr)
	if err != nil {
		return fail(stderr, 2, err, "")
	}
	hashed, err := parseFile(fs.Arg(1), stderr)
	if err != nil {
		return fail(stderr, 2, err, "")
	}
	switch {
	case plain.Hashed():
		return fail(stderr, 2, fmt.Errorf("%s is hashed: PLAIN must be the plain list", plain.File), "the arguments are PLAIN then HASHED")
	case !hashed.Hashed():
		return fail(stderr, 2, fmt.Errorf("%s has no \"hashed\" header: HASHED must be a hashed list", hashed.File), "")
	}
	want, err := blocklist.Hash(plain, hashed.Salt)
	if err != nil {
		return fail(stderr, 2, err, "")
	}
	diffs := hashDiffs(want, hashed)
	for _, d := range diffs {
		fmt.Fprintln(stdout, d)
	}
	if len(diffs) > 0 {
		return fail(stderr, 1, fmt.Errorf("%s is not the hash of %s: %d differences", hashed.File, plain.File, len(diffs)), "")
	}
	fmt.Fprintf(stdout, "%s is the hash of %s: list %q serial %d, %d entries\n", hashed.File, plain.File, hashed.Name, hashed.Serial, len(hashed.Entries))
	return 0
}

// hashDiffs lists how got differs from want, the hash of a plain list: in
// header fields, then in entries (compared as multisets, each as
// "PATTERN ORDER CATEGORY"), with the line of the plain entry a digest
// stands for.
func hashDiffs(want, got *blocklist.List) []string {
	var diffs []string
	fields := func(l *blocklist.List) map[string]string {
		m := map[string]string{}
		for _, f := range l.Fields() {
			m[f.Key] = f.Value
		}
		return m
	}
	wf, gf := fields(want), fields(got)
	var keys []string
	for k := range wf {
		keys = append(keys, k)
	}
	for k := range gf {
		if _, ok := wf[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		if wf[k] != gf[k] {
			diffs = append(diffs, fmt.Sprintf("%s: header %s: %q, the plain list has %q", got.File, k, gf[k], wf[k]))
		}
	}
	entry := func(e blocklist.Entry) string {
		return strings.TrimSpace(e.Pattern() + " " + e.Order + " " + e.Category)
	}
	count := map[string]int{}
	for _, e := range got.Entries {
		count[entry(e)]++
	}
	for _, e := range want.Entries { // want's lines are the plain list's
		if k := entry(e); count[k] > 0 {
			count[k]--
			continue
		}
		diffs = append(diffs, fmt.Sprintf("%s:%d: entry missing from %s (its hash would be %s)", want.File, e.Line, got.File, entry(e)))
	}
	for _, e := range got.Entries {
		if k := entry(e); count[k] > 0 {
			count[k]--
			diffs = append(diffs, fmt.Sprintf("%s:%d: entry %s stands for no entry of %s", got.File, e.Line, k, want.File))
		}
	}
	return diffs
}
