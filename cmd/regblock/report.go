package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"time"

	"aead.dev/minisign"

	"github.com/regblock/regblock/internal/report"
	"github.com/regblock/regblock/plugin/pkg/atomicfile"
)

const reportUsage = `Usage: regblock report -receipts DIR -lists DIR [-from DATE -to DATE | -month YYYY-MM|previous]
       [-deadline DUR] [-threshold N] [-lang en|ms] [-p PUB...]
       [-o HTML] [-json FILE] [-csv DIR] [-out DIR]

Builds the transparency report for a period: per list, its versions, the
entries they added and removed and the orders behind them; how fast the
fleet enforced each version (median, 95th percentile and slowest time from
its issue to each resolver's first receipt showing it, the share within
the deadline, the resolvers that never did), per ISP key; and the queries
each list blocked a day, a day below the threshold shown as "< N". It
reads the receiver's store (-receipts, the directory of regblock receipts
-dir) and the publisher's directory (-lists: every signed NAME.list and
delta in it and in NAME.d/). It names no entry and no client.

The period runs from -from to -to (dates, UTC, -to excluded; RFC 3339
times are taken too), or is the calendar month -month names ("previous":
the month before this one, for a monthly timer); by default, the days the
receipts cover. The page (-o) is one HTML file with its charts drawn in,
nothing loaded, nothing run; -json writes the report's figures, -csv a
directory of tables. -out DIR writes everything into DIR/PERIOD (PERIOD:
YYYY-MM for a month, else FROM_TO): report.json, csv/, and the page in
each language, report.en.html and report.ms.html. The
same inputs give the same bytes: sign the files with 'regblock sign -raw'.
With -p, every list and delta read must be signed by one of the keys.
Without -o, -json or -csv, the JSON goes to standard output. Exits 0 when
written, 1 when the inputs cannot be read, 2 on bad usage.

Example:
  regblock report -receipts /var/lib/regblock/receipts -lists /srv/lists \
      -from 2026-11-01 -to 2026-12-01 -o report.html -json report.json
  regblock report -receipts /var/lib/regblock/receipts -lists /srv/lists \
      -month previous -out /var/lib/regblock/reports

`

func reportCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("report", reportUsage, stderr)
	store := fs.String("receipts", "", "the receiver's store `directory`")
	lists := fs.String("lists", "", "the publisher's `directory` of lists and deltas")
	fromFlag := fs.String("from", "", "first `day` of the period (YYYY-MM-DD, UTC)")
	toFlag := fs.String("to", "", "`day` after the period (YYYY-MM-DD, UTC)")
	deadline := fs.Duration("deadline", 30*time.Minute, "time a resolver has to enforce a version")
	threshold := fs.Uint64("threshold", 10, "show a day's count below `N` as \"< N\"")
	lang := fs.String("lang", "en", "language of the page: en or ms")
	htmlOut := fs.String("o", "", "write the page to `file`")
	jsonOut := fs.String("json", "", "write the JSON to `file`")
	csvOut := fs.String("csv", "", "write CSV tables to `directory`")
	month := fs.String("month", "", "the period is calendar `month` YYYY-MM, or previous")
	outDir := fs.String("out", "", "write everything into `directory`/PERIOD")
	var pubs multiFlag
	fs.Var(&pubs, "p", "public key `file` that must have signed the lists and deltas (repeat or comma list)")
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	from, fromErr := parseDay(*fromFlag)
	to, toErr := parseDay(*toFlag)
	if *month != "" && fromErr == nil && toErr == nil {
		from, to, fromErr = parseMonth(*month, time.Now())
	}
	if code := require(fs,
		need{*month == "" || *fromFlag == "" && *toFlag == "", "-month excludes -from and -to"},
		need{*store != "" && *lists != "", "-receipts DIR and -lists DIR are both needed"},
		need{fs.NArg() == 0, "unexpected arguments " + gotArgs(fs)},
		need{fromErr == nil, fmt.Sprint(fromErr)},
		need{toErr == nil, fmt.Sprint(toErr)},
		need{*deadline >= time.Second && *deadline%time.Second == 0, "-deadline: whole seconds, at least 1s"},
		need{*outDir == "" || *htmlOut == "" && *jsonOut == "" && *csvOut == "", "-out writes every form: it excludes -o, -json and -csv"},
		need{*threshold > 0, "-threshold must be at least 1"},
		need{slices.Contains(report.Languages, *lang), "-lang: en or ms"},
	); code >= 0 {
		return code
	}
	if os.Getenv("GOGC") == "" {
		// Millions of small receipts make garbage fast while the heap
		// stays small: collecting a quarter as often saves a fifth of
		// the time for a few tens of MB more.
		debug.SetGCPercent(400)
	}
	var keys []minisign.PublicKey
	if len(pubs) > 0 {
		var err error
		if keys, err = readKeys(pubs); err != nil {
			return fail(stderr, 1, err, "")
		}
	}
	r, err := report.Build(report.Options{Receipts: *store, Lists: *lists, Keys: keys, From: from, To: to, Deadline: *deadline, Threshold: *threshold})
	if err != nil {
		return fail(stderr, 1, err, "")
	}
	for _, w := range r.Warnings {
		fmt.Fprintf(stderr, "warning: %s\n", w)
	}
	if r.DamagedLines > 0 {
		fmt.Fprintf(stderr, "warning: %d lines of %s left out: damaged, or a receipt of another resolver than its file's\n", r.DamagedLines, *store)
	}
	if *outDir != "" {
		period := r.From.Format(time.DateOnly) + "_" + r.To.Format(time.DateOnly)
		if *month != "" {
			period = r.From.Format("2006-01")
		}
		dir := filepath.Join(*outDir, period)
		*jsonOut, *csvOut = filepath.Join(dir, "report.json"), filepath.Join(dir, "csv")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fail(stderr, 1, err, "")
		}
		for _, l := range report.Languages {
			page := filepath.Join(dir, "report."+l+".html")
			if err := writeRendered(page, func(w io.Writer) error { return report.WriteHTML(w, r, l) }); err != nil {
				return fail(stderr, 1, err, "")
			}
		}
	}
	if *htmlOut == "" && *jsonOut == "" && *csvOut == "" {
		if err := report.WriteJSON(stdout, r); err != nil {
			return fail(stderr, 1, err, "")
		}
		return 0
	}
	if *htmlOut != "" {
		if err := writeRendered(*htmlOut, func(w io.Writer) error { return report.WriteHTML(w, r, *lang) }); err != nil {
			return fail(stderr, 1, err, "")
		}
	}
	if *jsonOut != "" {
		if err := writeRendered(*jsonOut, func(w io.Writer) error { return report.WriteJSON(w, r) }); err != nil {
			return fail(stderr, 1, err, "")
		}
	}
	if *csvOut != "" {
		if err := report.WriteCSV(*csvOut, r); err != nil {
			return fail(stderr, 1, err, "")
		}
	}
	return 0
}

// writeRendered writes what render makes to path, whole or not at all.
func writeRendered(path string, render func(io.Writer) error) error {
	var b bytes.Buffer
	if err := render(&b); err != nil {
		return err
	}
	return atomicfile.Write(path, b.Bytes(), 0o644)
}

// parseMonth reads a calendar month, YYYY-MM or "previous" (the month
// before the one of now, UTC), as the period from its first day to the
// next month's.
func parseMonth(s string, now time.Time) (from, to time.Time, err error) {
	if s == "previous" {
		now = now.UTC()
		to = time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
		return to.AddDate(0, -1, 0), to, nil
	}
	from, err = time.Parse("2006-01", s)
	if err != nil {
		return from, to, fmt.Errorf("-month %q: want YYYY-MM or previous", s)
	}
	return from, from.AddDate(0, 1, 0), nil
}

// parseDay reads a day (YYYY-MM-DD, midnight UTC) or an RFC 3339 time;
// empty is zero.
func parseDay(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return t, fmt.Errorf("%q is not a day (YYYY-MM-DD) or an RFC 3339 time", s)
	}
	return t.UTC(), nil
}
