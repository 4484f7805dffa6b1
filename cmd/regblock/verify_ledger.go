package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/regblock/regblock/internal/receipts"
	"github.com/regblock/regblock/plugin/pkg/ledger"
	"github.com/regblock/regblock/plugin/pkg/receipt"
)

const verifyLedgerUsage = `Usage: regblock verify-ledger [-receipts DIR -resolver ID] FILE...

Checks the hash chain of a regblock audit log and prints the enforcement
ledger: which serial of which list was applied, rejected, expired or removed,
and when. Give rotated files oldest first, the current file last; the chain
must run unbroken through them. When FILE.head exists beside the last file
(the resolver keeps it), the chain must end at the hash it holds.

With -receipts, the ledger is also checked against the enforcement receipts
the resolver sent (the receiver's directory, regblock receipts -dir): each
receipt commits to the hash of the ledger's Nth event, and every receipt
must find that event among the lines given, at its place. A line removed,
edited, added or rewritten before the last receipt shows, and so does a
ledger cut short of what a receipt committed to. Give every rotated file
since the resolver's first receipt: an event in a file not given fails the
check too. The count in FILE.head is the ledger's own word: it is reported
where the receipts disagree, never trusted. -resolver names the resolver
whose ledger this is: that is the auditor's to say, since an ISP can send
receipts under any name of its key that match a ledger it made.

Exit status: 0 the chain is intact, 1 it is broken, 2 the files could not be
read.

Example:
  regblock verify-ledger /var/log/regblock/audit.jsonl.1 /var/log/regblock/audit.jsonl

`

func verifyLedger(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("verify-ledger", verifyLedgerUsage, stderr)
	receiptsDir := fs.String("receipts", "", "check the ledger against the receipts in `DIR` too")
	resolverID := fs.String("resolver", "", "with -receipts, the `resolver` whose ledger this is")
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	if code := require(fs,
		need{fs.NArg() > 0, "no FILE: name the audit log (and its rotated files)"},
		need{*resolverID == "" || *receiptsDir != "", "-resolver needs -receipts"},
		need{*resolverID != "" || *receiptsDir == "", "-receipts needs -resolver ID: say whose ledger this is (the receipts directory holds RESOLVER.jsonl files)"},
	); code >= 0 {
		return code
	}

	var events []ledger.Event
	var lines []ledger.Line
	head := ""
	for _, name := range fs.Args() {
		f, err := os.Open(name)
		if err != nil {
			return fail(stderr, 2, err, "")
		}
		ls, h, err := ledger.CheckLines(f, name, head)
		f.Close()
		lines = append(lines, ls...)
		for _, l := range ls {
			events = append(events, l.Event)
		}
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
	// total: ledger events since the chain began, as FILE.head says
	want, total, _, err := ledger.ReadHead(last)
	switch {
	case errors.Is(err, ledger.ErrHeadCount):
		err = nil // a count that does not parse says nothing; the hash is still checked
	case err != nil && !errors.Is(err, os.ErrNotExist):
		// A head that is there must be read: a directory or a FIFO in
		// its place must not pass for no head.
		printTimeline(stdout, events)
		return fail(stderr, 2, err, "")
	}
	if err == nil {
		if *receiptsDir != "" {
			if code := checkReceipts(*receiptsDir, *resolverID, lines, total, stdout, stderr); code != 0 {
				printTimeline(stdout, events)
				return code
			}
		}
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
	if err != nil && *receiptsDir != "" { // no FILE.head
		if code := checkReceipts(*receiptsDir, *resolverID, lines, 0, stdout, stderr); code != 0 {
			printTimeline(stdout, events)
			return code
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

// checkReceipts checks ledger lines against the receipts of a resolver in
// dir: every receipt that commits to ledger events must find its event N
// among the lines given, hashing to what it committed to, at the place the
// other receipts give it. headCount is what the ledger's .head says (0
// when it says nothing): reported when the receipts disagree, never
// trusted. It prints what it checked and returns an exit code: 0 all
// match, 1 they do not, 2 misuse.
func checkReceipts(dir, resolver string, lines []ledger.Line, headCount uint64, stdout, stderr io.Writer) int {
	load := func(path string) ([]receipt.Receipt, error) {
		recs, damaged, err := receipts.Load(path)
		if err != nil {
			return nil, err
		}
		if damaged > 0 {
			fmt.Fprintf(stderr, "regblock: warning: %s: %d damaged lines (torn, oversized or not a record) left out\n", path, damaged)
		}
		out := make([]receipt.Receipt, 0, len(recs))
		for _, rec := range recs {
			var r receipt.Receipt
			if err := json.Unmarshal(rec.Bytes(), &r); err != nil {
				return nil, fmt.Errorf("%s: %v", path, err)
			}
			out = append(out, r)
		}
		return out, nil
	}
	rs, err := load(filepath.Join(dir, resolver+".jsonl"))
	if err != nil {
		return fail(stderr, 2, err, "")
	}
	cs := make([]ledger.Commitment, len(rs))
	for i, r := range rs {
		cs[i] = ledger.Commitment{Time: r.Time, Head: r.Ledger.Head, Events: r.Ledger.Events}
	}
	m := ledger.Match(lines, cs)
	offset, problems := m.Offset, m.Problems
	if headCount > 0 && m.Placed && headCount != offset+uint64(len(lines)) {
		fmt.Fprintf(stdout, "note: the ledger's .head counts %d events; by the receipts the files given end at event %d (the count is the ledger's word: the receipts decide)\n", headCount, offset+uint64(len(lines)))
	}
	if m.Checked == 0 && len(problems) == 0 {
		// Receipts sent without an audit log (events 0), or none at all:
		// they vouch for no ledger, so this one is checked against nothing.
		problems = append(problems, fmt.Sprintf("no receipt of resolver %s commits to a ledger event: nothing here vouches for this ledger", resolver))
	}
	if len(problems) > 0 {
		for _, p := range problems {
			fmt.Fprintln(stdout, p)
		}
		return fail(stderr, 1, fmt.Errorf("%w: the ledger does not match %d of the %d receipts of resolver %s", ledger.ErrBroken, len(problems), len(rs), resolver), "")
	}
	fmt.Fprintf(stdout, "receipts of resolver %s: %d match the ledger, events %d to %d\n", resolver, m.Checked, offset+1, offset+uint64(len(lines)))
	return 0
}
