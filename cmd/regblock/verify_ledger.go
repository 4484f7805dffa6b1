package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/regblock/regblock/plugin/pkg/ledger"
)

const verifyLedgerUsage = `Usage: regblock verify-ledger FILE...

Checks the hash chain of a regblock audit log and prints the enforcement
ledger: which serial of which list was applied, rejected, expired or removed,
and when. Give rotated files oldest first, the current file last; the chain
must run unbroken through them. When FILE.head exists beside the last file
(the resolver keeps it), the chain must end at the hash it holds.

Exit status: 0 the chain is intact, 1 it is broken, 2 the files could not be
read.

Example:
  regblock verify-ledger /var/log/regblock/audit.jsonl.1 /var/log/regblock/audit.jsonl

`

func verifyLedger(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("verify-ledger", verifyLedgerUsage, stderr)
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	if code := require(fs, need{fs.NArg() > 0, "no FILE: name the audit log (and its rotated files)"}); code >= 0 {
		return code
	}

	var events []ledger.Event
	head := ""
	for _, name := range fs.Args() {
		f, err := os.Open(name)
		if err != nil {
			return fail(stderr, 2, err, "")
		}
		evs, h, err := ledger.Check(f, name, head)
		f.Close()
		events = append(events, evs...)
		if err != nil {
			printTimeline(stdout, events)
			if errors.Is(err, ledger.ErrBroken) {
				return fail(stderr, 1, err, "")
			}
			return fail(stderr, 2, err, "")
		}
		head = h
	}
	last := fs.Arg(fs.NArg() - 1)
	if data, err := os.ReadFile(last + ".head"); err == nil {
		want, _, _ := strings.Cut(strings.TrimSpace(string(data)), " ") // "HASH COUNT"
		switch {
		case len(events) == 0:
			// Fresh after a rotation: the chain continues from a file not given.
			printTimeline(stdout, events)
			fmt.Fprintf(stdout, "no ledger events in %s; %s.head continues a chain from an earlier file: give the rotated files too, oldest first\n", strings.Join(fs.Args(), ", "), last)
			return 0
		case want != head:
			printTimeline(stdout, events)
			return fail(stderr, 1, fmt.Errorf("%s: %w: the last ledger line hashes to %.12s…, but %s.head says the chain ends at %.12s…: ledger lines at the end were removed or edited",
				last, ledger.ErrBroken, head, last, want), "")
		}
	}
	printTimeline(stdout, events)
	files := "files"
	if fs.NArg() == 1 {
		files = "file"
	}
	fmt.Fprintf(stdout, "chain intact: %d ledger events in %d %s\n", len(events), fs.NArg(), files)
	return 0
}

// printTimeline prints one line per ledger event, then the lists in force
// at the end.
func printTimeline(w io.Writer, events []ledger.Event) {
	type state struct {
		serial uint64
		since  time.Time
	}
	inForce := map[string]state{}
	var policy *state // the trust policy in force, if any
	for _, e := range events {
		serial := ""
		if e.Serial != nil {
			serial = fmt.Sprintf("serial %d", *e.Serial)
		}
		detail := ""
		switch e.Event {
		case ledger.ListApplied:
			detail = "from " + e.File
			if e.Restored {
				detail = "restored at startup, first applied from " + e.File
			}
			if e.Serial != nil {
				inForce[e.List] = state{*e.Serial, e.Time}
			}
		case ledger.ListRejected:
			detail = e.Reason + ": " + e.Error
			if e.InForce != nil {
				detail += fmt.Sprintf(" (serial %d stays in force)", *e.InForce)
			}
		case ledger.ListExpired:
			if e.Expires != nil {
				detail = "expired at " + e.Expires.Format(time.RFC3339) + ", still enforced"
			}
		case ledger.ListRemoved:
			detail = e.Reason
			delete(inForce, e.List)
		case ledger.TrustApplied:
			detail = "trust policy from " + e.File
			if e.Serial != nil {
				policy = &state{*e.Serial, e.Time}
			}
		case ledger.TrustRejected:
			detail = "trust policy " + e.Reason + ": " + e.Error
			if e.InForce != nil {
				detail += fmt.Sprintf(" (serial %d stays in force)", *e.InForce)
			}
		case ledger.TrustExpired:
			detail = "trust policy expired, still in force"
		}
		what := e.List
		if strings.HasPrefix(e.Event, "trust_") {
			what = "(trust policy)"
		}
		kind := strings.TrimPrefix(strings.TrimPrefix(e.Event, "list_"), "trust_")
		fmt.Fprintf(w, "%s  %-20s %-9s %-18s %s\n", e.Time.Format(time.RFC3339), what, kind, serial, detail)
	}
	names := make([]string, 0, len(inForce))
	for name := range inForce {
		names = append(names, name)
	}
	sort.Strings(names)
	fmt.Fprintln(w, "in force at the end of the ledger:")
	if len(names) == 0 {
		fmt.Fprintln(w, "  (no list)")
	}
	for _, name := range names {
		s := inForce[name]
		fmt.Fprintf(w, "  %-20s serial %d since %s\n", name, s.serial, s.since.Format(time.RFC3339))
	}
	if policy != nil {
		fmt.Fprintf(w, "  %-20s serial %d since %s\n", "(trust policy)", policy.serial, policy.since.Format(time.RFC3339))
	}
}
