package main

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/regblock/regblock/plugin/pkg/blocklist"
)

const diffUsage = `Usage: regblock diff [-json] OLD NEW

Compares two versions of a list: the entries added, removed, and changed
(same pattern, another order reference or category), and the serial step.
Exits 0 whether or not they differ; 1 when a list cannot be read.

Example:
  regblock diff example.list.old blocklists/example.list

`

type diffEntry struct {
	Pattern  string `json:"pattern"`
	Order    string `json:"order,omitempty"`
	Category string `json:"category,omitempty"`
	Line     int    `json:"line"`
}

type diffChange struct {
	Pattern string    `json:"pattern"`
	Old     diffEntry `json:"old"`
	New     diffEntry `json:"new"`
}

type diffReport struct {
	List      string       `json:"list"`
	OldSerial uint64       `json:"old_serial"`
	NewSerial uint64       `json:"new_serial"`
	Added     []diffEntry  `json:"added"`
	Removed   []diffEntry  `json:"removed"`
	Changed   []diffChange `json:"changed"`
}

func diff(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("diff", diffUsage, stderr)
	asJSON := fs.Bool("json", false, "print JSON")
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	if code := require(fs, need{fs.NArg() == 2, "want two lists, OLD and NEW; got " + gotArgs(fs)}); code >= 0 {
		return code
	}
	oldList, err := parseFile(fs.Arg(0), stderr)
	if err != nil {
		return fail(stderr, 1, err, "")
	}
	newList, err := parseFile(fs.Arg(1), stderr)
	if err != nil {
		return fail(stderr, 1, err, "")
	}
	r := compare(oldList, newList)
	if *asJSON {
		writeJSON(stdout, r)
		return 0
	}
	if oldList.Name != newList.Name {
		fmt.Fprintf(stdout, "warning: the lists have different names: %q and %q\n", oldList.Name, newList.Name)
	}
	step := "a rollback: resolvers will refuse it"
	switch {
	case r.NewSerial > r.OldSerial:
		step = fmt.Sprintf("+%d", r.NewSerial-r.OldSerial)
	case r.NewSerial == r.OldSerial:
		step = "unchanged: resolvers refuse other bytes under the same serial"
	}
	fmt.Fprintf(stdout, "list %s: serial %d -> %d (%s)\n", r.List, r.OldSerial, r.NewSerial, step)
	for _, e := range r.Added {
		fmt.Fprintf(stdout, "+ %s\n", formatEntry(e))
	}
	for _, e := range r.Removed {
		fmt.Fprintf(stdout, "- %s\n", formatEntry(e))
	}
	for _, c := range r.Changed {
		fmt.Fprintf(stdout, "~ %s  (was %s)\n", formatEntry(c.New), formatEntry(c.Old))
	}
	fmt.Fprintf(stdout, "%d added, %d removed, %d changed\n", len(r.Added), len(r.Removed), len(r.Changed))
	return 0
}

func formatEntry(e diffEntry) string {
	order, cat := e.Order, e.Category
	if order == "" {
		order = "-"
	}
	return strings.TrimSuffix(fmt.Sprintf("%s %s %s", e.Pattern, order, cat), " ") // no category: no blank at the end
}

// compare reports the entries of b that a lacks, those of a that b lacks,
// and those whose order or category changed, each sorted by pattern.
func compare(a, b *blocklist.List) diffReport {
	index := func(l *blocklist.List) map[string]diffEntry {
		m := make(map[string]diffEntry, len(l.Entries))
		for _, e := range l.Entries {
			m[e.Pattern()] = diffEntry{e.Pattern(), e.Order, e.Category, e.Line}
		}
		return m
	}
	old, cur := index(a), index(b)
	r := diffReport{List: b.Name, OldSerial: a.Serial, NewSerial: b.Serial, Added: []diffEntry{}, Removed: []diffEntry{}, Changed: []diffChange{}}
	for p, e := range cur {
		o, ok := old[p]
		switch {
		case !ok:
			r.Added = append(r.Added, e)
		case o.Order != e.Order || o.Category != e.Category:
			r.Changed = append(r.Changed, diffChange{p, o, e})
		}
	}
	for p, o := range old {
		if _, ok := cur[p]; !ok {
			r.Removed = append(r.Removed, o)
		}
	}
	sort.Slice(r.Added, func(i, j int) bool { return r.Added[i].Pattern < r.Added[j].Pattern })
	sort.Slice(r.Removed, func(i, j int) bool { return r.Removed[i].Pattern < r.Removed[j].Pattern })
	sort.Slice(r.Changed, func(i, j int) bool { return r.Changed[i].Pattern < r.Changed[j].Pattern })
	return r
}
