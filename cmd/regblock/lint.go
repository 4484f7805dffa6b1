package main

import (
	"fmt"
	"io"
	"time"

	"github.com/regblock/regblock/plugin/pkg/blocklist"
	"github.com/regblock/regblock/plugin/pkg/regularfile"
	"github.com/regblock/regblock/plugin/pkg/trust"
)

const lintUsage = `Usage: regblock lint LIST...

Checks lists without signing them: every error, each with its file and line
(a resolver would reject the list, as it does one issued more than 5 minutes
after this machine's clock; sign refuses those too), and warnings: duplicate entries, entries
a broader entry already blocks, exceptions that unblock nothing, an expiry in
the past or before the issue time. Exits 1 when a list has errors, 0 when it
has only warnings.

Example:
  regblock lint blocklists/example.list

`

func lint(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("lint", lintUsage, stderr)
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	if code := require(fs, need{fs.NArg() > 0, "no LIST to lint"}); code >= 0 {
		return code
	}
	code := 0
	for _, path := range fs.Args() {
		data, err := regularfile.Read(path, maxFileSize)
		if err != nil {
			code = fail(stderr, 1, err, "")
			continue
		}
		l, _, what, err := describe(path, data)
		if err == nil && l != nil {
			err = issuedAhead(l, data, time.Now())
		}
		if err != nil {
			printErrors(stdout, err)
			code = 1
			continue
		}
		if l == nil { // a trust policy
			if p, err := trust.Parse(path, data); err == nil {
				for _, w := range p.Warnings() {
					fmt.Fprintf(stdout, "%s:%d: warning: %s\n", path, w.Line, w.Msg)
				}
			}
			fmt.Fprintf(stdout, "%s: %s, no errors\n", path, what)
			continue
		}
		if blocklist.IsDeltaData(data) {
			fmt.Fprintf(stdout, "%s: %s, no errors\n", path, what)
			continue
		}
		warnings := blocklist.Lint(l, time.Now())
		for _, w := range warnings {
			fmt.Fprintf(stdout, "%s:%d: warning: %s\n", path, w.Line, w.Msg)
		}
		fmt.Fprintf(stdout, "%s: list %q serial %d: %d blocking entries, %d warnings, no errors\n", path, l.Name, l.Serial, l.Blocking(), len(warnings))
	}
	return code
}
