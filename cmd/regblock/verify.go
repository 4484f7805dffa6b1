package main

import (
	"fmt"
	"io"
	"strings"
	"time"

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
		fmt.Fprintf(stdout, "%s: signature valid\n", path)
		printHeader(stdout, l)
	}
	return code
}

// printHeader prints a list's header, one field a line.
func printHeader(w io.Writer, l *blocklist.List) {
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(w, "  %-10s %s\n", k+":", v)
		}
	}
	row("name", l.Name)
	row("issuer", l.Issuer)
	row("serial", fmt.Sprint(l.Serial))
	if !l.Issued.IsZero() { // an RPZ zone may not say
		row("issued", l.Issued.Format(time.RFC3339))
	}
	if !l.Expires.IsZero() {
		row("expires", l.Expires.Format(time.RFC3339))
	}
	row("authority", l.Authority)
	row("appeal", l.Appeal)
	row("contact", strings.Join(l.Contact, " "))
	row("canary", l.Canary)
	row("entries", fmt.Sprintf("%d blocking, %d exceptions", l.Blocking(), len(l.Entries)-l.Blocking()))
}
