package main

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/regblock/regblock/plugin/pkg/atomicfile"
	"github.com/regblock/regblock/plugin/pkg/blockindex"
	"github.com/regblock/regblock/plugin/pkg/blocklist"
)

const deltaUsage = `Usage: regblock delta [-o OUT] OLD NEW

Writes the delta that turns version OLD of a list into version NEW: NEW's
whole header, the version it starts from (OLD's serial and SHA-256), NEW's
SHA-256 and a checksum of its entries, then a "- " line for each entry
removed and a "+ " line for each entry added. Sign it like a list
(regblock sign, or minisign -S) and publish it as NAME.d/OLD-SERIAL.delta
beside NAME.list; a resolver applies it to OLD only, and checks the
result against the checksum. Address (ip:) entries cannot change by delta.
Without -o the delta goes to standard output. Exits 0 when written, 1
when a list cannot be read or the delta cannot be made.

Example:
  regblock delta -o example.d/2026112801.delta example.list.old blocklists/example.list

`

func deltaCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("delta", deltaUsage, stderr)
	out := fs.String("o", "", "write the delta to `file` (default: standard output)")
	if code := parseFlags(fs, flagsFirst(args, "o")); code >= 0 {
		return code
	}
	if code := require(fs, need{fs.NArg() == 2, "want two lists, OLD and NEW; got " + gotArgs(fs)}); code >= 0 {
		return code
	}
	old, err := parseFile(fs.Arg(0), stderr)
	if err != nil {
		return fail(stderr, 1, err, "")
	}
	next, err := parseFile(fs.Arg(1), stderr)
	if err != nil {
		return fail(stderr, 1, err, "")
	}
	d, err := blocklist.MakeDelta(old, next)
	if err != nil {
		return fail(stderr, 1, err, "")
	}
	if d.Checksum, err = blockindex.ChecksumOf(next.Entries); err != nil {
		return fail(stderr, 1, err, "")
	}
	var b bytes.Buffer
	if err := blocklist.WriteDelta(&b, d); err != nil {
		return fail(stderr, 1, err, "")
	}
	if *out == "" {
		stdout.Write(b.Bytes())
		return 0
	}
	if err := atomicfile.Write(*out, b.Bytes(), 0o644); err != nil {
		return fail(stderr, 1, err, "")
	}
	fmt.Fprintf(stderr, "%s: delta of list %q from serial %d to %d: %d added, %d removed\n", *out, d.Name, d.From.Serial, d.Serial, len(d.Added), len(d.Removed))
	return 0
}

// flagsFirst moves the flags named (each with its value) to the front of
// args, so that a command whose synopsis puts them last ("delta OLD NEW -o
// OUT") reads them.
func flagsFirst(args []string, names ...string) []string {
	var flags, rest []string
	for i := 0; i < len(args); i++ {
		name, _, hasValue := strings.Cut(strings.TrimLeft(args[i], "-"), "=")
		if !strings.HasPrefix(args[i], "-") || !slices.Contains(names, name) {
			rest = append(rest, args[i])
			continue
		}
		flags = append(flags, args[i])
		if !hasValue && i+1 < len(args) {
			i++
			flags = append(flags, args[i])
		}
	}
	return append(flags, rest...)
}

// describeDelta is describe for a delta.
func describeDelta(path string, data []byte) (*blocklist.List, uint64, string, error) {
	d, err := blocklist.ParseDelta(path, data)
	if err != nil {
		return nil, 0, "", err
	}
	return d.List, d.Serial, fmt.Sprintf("delta of list %q from serial %d to %d (%d added, %d removed)", d.Name, d.From.Serial, d.Serial, len(d.Added), len(d.Removed)), nil
}

// printDelta prints what a delta says besides its new header.
func printDelta(w io.Writer, d *blocklist.Delta) {
	fmt.Fprintf(w, "  %-10s serial %d, SHA-256 %x\n", "from:", d.From.Serial, d.From.SHA256)
	fmt.Fprintf(w, "  %-10s %x\n", "sha256:", d.SHA256)
	fmt.Fprintf(w, "  %-10s %s\n", "digest:", d.Checksum)
	fmt.Fprintf(w, "  %-10s %d added, %d removed\n", "changes:", len(d.Added), len(d.Removed))
}
