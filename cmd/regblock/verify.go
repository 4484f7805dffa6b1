package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/regblock/regblock/plugin/pkg/blocklist"
)

const verifyUsage = `Usage: regblock verify -p PUB [-p PUB2] LIST...

Verifies each list's signature (LIST.minisig) against the public keys, as a
resolver does, then parses the list and prints its header. Exits 0 only when
every list is valid.

Example:
  regblock verify -p blocklists/example.pub blocklists/example.list

`

func verify(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("verify", verifyUsage, stderr)
	var pubs multiFlag
	fs.Var(&pubs, "p", "trusted public key `file` (repeat, or separate with commas)")
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	if code := require(fs,
		need{len(pubs) > 0, "-p is required: the public keys to verify against"},
		need{fs.NArg() > 0, "no LIST to verify"},
	); code >= 0 {
		return code
	}
	keys, err := readKeys(pubs)
	if err != nil {
		return fail(stderr, 1, err, "")
	}
	code := 0
	for _, path := range fs.Args() {
		l, err := blocklist.Load(path, keys, 1<<40)
		if err != nil {
			code = fail(stderr, 1, err, "")
			continue
		}
		ids := make([]string, len(l.Signers))
		for i, id := range l.Signers {
			ids[i] = fmt.Sprintf("%X", id)
		}
		fmt.Fprintf(stdout, "%s: signature valid, by key %s\n", path, strings.Join(ids, ", "))
		printHeader(stdout, l)
	}
	return code
}

// printHeader prints a list's header, one field a line.
func printHeader(w io.Writer, l *blocklist.List) {
	for _, f := range l.Fields() {
		fmt.Fprintf(w, "  %-10s %s\n", f.Key+":", f.Value)
	}
	fmt.Fprintf(w, "  %-10s %d blocking, %d exceptions\n", "entries:", l.Blocking(), len(l.Entries)-l.Blocking())
}
