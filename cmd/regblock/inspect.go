package main

import (
	"encoding/hex"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/regblock/regblock/plugin/pkg/blocklist"
	"github.com/regblock/regblock/plugin/pkg/regularfile"
	"github.com/regblock/regblock/plugin/pkg/trust"
)

const inspectUsage = `Usage: regblock inspect [-json] LIST

Prints a list's header, its entries counted by kind and by category, and the
time left before it expires. Given a delta, prints its header, the version
it starts from, and the entries it adds and removes, counted the same way.
It does not check the signature (regblock verify does).

Example:
  regblock inspect -json blocklists/example.list

`

// inspection is what inspect reports, also as JSON.
type inspection struct {
	File      string     `json:"file"`
	Name      string     `json:"name"`
	Issuer    string     `json:"issuer,omitempty"`
	Serial    uint64     `json:"serial"`
	Issued    time.Time  `json:"issued"`
	Expires   *time.Time `json:"expires,omitempty"`
	Expired   bool       `json:"expired"`
	ExpiresIn string     `json:"expires_in,omitempty"`
	Authority string     `json:"authority,omitempty"`
	Appeal    string     `json:"appeal,omitempty"`
	Contact   []string   `json:"contact,omitempty"`
	Canary    string     `json:"canary,omitempty"`
	Hashed    bool       `json:"hashed"`
	Entries   int        `json:"entries"`
	Blocking  int        `json:"blocking"`
	counts
}

// counts are entries counted by kind, and blocking entries by category.
type counts struct {
	ByKind     map[string]int `json:"by_kind"`
	ByCategory map[string]int `json:"by_category"`
}

var kindNames = map[blocklist.Kind]string{
	blocklist.Subtree: "name", blocklist.Below: "*.name", blocklist.Exact: "=name", blocklist.Exception: "!name",
	blocklist.ExceptExact: "!=name", blocklist.ExceptBelow: "!*.name",
}

// kindName is how inspect counts an entry.
func kindName(e blocklist.Entry) string {
	if e.Prefix.IsValid() {
		return e.Kind.Prefix() + "ip:prefix"
	}
	if e.Hashed {
		return hashedKind(kindNames[e.Kind])
	}
	return kindNames[e.Kind]
}

// hashedKind is the name of a kind of hashed entry: "=h:digest" for "=name".
func hashedKind(kind string) string { return strings.Replace(kind, "name", "h:digest", 1) }

func inspect(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("inspect", inspectUsage, stderr)
	asJSON := fs.Bool("json", false, "print JSON")
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	if code := require(fs, need{fs.NArg() == 1, "want one LIST; got " + gotArgs(fs)}); code >= 0 {
		return code
	}
	data, err := regularfile.Read(fs.Arg(0), maxFileSize)
	switch {
	case err != nil:
		return fail(stderr, 1, err, "")
	case trust.IsPolicy(data) && len(data) > trust.MaxSize:
		return fail(stderr, 1, regularfile.TooLarge(fs.Arg(0), trust.MaxSize), "")
	case trust.IsPolicy(data):
		return inspectPolicy(fs.Arg(0), data, *asJSON, stdout, stderr)
	case blocklist.IsDeltaData(data):
		return inspectDelta(fs.Arg(0), data, *asJSON, stdout, stderr)
	}
	l, err := parseList(fs.Arg(0), data, stderr)
	if err != nil {
		return fail(stderr, 1, err, "")
	}
	now := time.Now()
	in := inspection{File: l.File, Name: l.Name, Issuer: l.Issuer, Serial: l.Serial, Issued: l.Issued, Authority: l.Authority,
		Appeal: l.Appeal, Contact: l.Contact, Canary: l.Canary, Hashed: l.Hashed(), Entries: len(l.Entries), Blocking: l.Blocking(),
		counts: countOf(l.Entries), Expired: l.Expired(now)}
	if !l.Expires.IsZero() {
		in.Expires = &l.Expires
		in.ExpiresIn = l.Expires.Sub(now).Round(time.Minute).String()
	}
	if *asJSON {
		writeJSON(stdout, in)
		return 0
	}
	printHeader(stdout, l)
	in.print(stdout, "", l.Hashed())
	switch {
	case in.Expires == nil:
		fmt.Fprintln(stdout, "  expiry:    none")
	case in.Expired:
		fmt.Fprintf(stdout, "  expiry:    EXPIRED %s ago (resolvers keep enforcing it)\n", (-l.Expires.Sub(now)).Round(time.Minute))
	default:
		fmt.Fprintf(stdout, "  expiry:    in %s\n", in.ExpiresIn)
	}
	return 0
}

func countOf(entries []blocklist.Entry) counts {
	c := counts{ByKind: map[string]int{}, ByCategory: map[string]int{}}
	for _, e := range entries {
		c.ByKind[kindName(e)]++
		if !e.Kind.IsException() {
			cat := e.Category
			if cat == "" {
				cat = "none"
			}
			c.ByCategory[cat]++
		}
	}
	return c
}

// print prints the counts, each heading followed by what.
func (c counts) print(w io.Writer, what string, hashed bool) {
	fmt.Fprintf(w, "  by kind%s:\n", what)
	for i, k := range []string{"name", "*.name", "=name", "!name", "!=name", "!*.name", "ip:prefix", "!ip:prefix"} {
		if hashed && !strings.Contains(k, "ip:") {
			k = hashedKind(k)
		}
		if n := c.ByKind[k]; n > 0 || i < 4 { // the kinds of RPZ and address entries when there are any
			fmt.Fprintf(w, "    %-10s %d\n", k, n)
		}
	}
	fmt.Fprintf(w, "  by category%s (blocking entries):\n", what)
	cats := make([]string, 0, len(c.ByCategory))
	for cat := range c.ByCategory {
		cats = append(cats, cat)
	}
	sort.Strings(cats)
	for _, cat := range cats {
		fmt.Fprintf(w, "    %-10s %d\n", cat, c.ByCategory[cat])
	}
}

// deltaInspection is what inspect says of a delta, also as JSON.
type deltaInspection struct {
	File    string     `json:"file"`
	Name    string     `json:"name"`
	Issuer  string     `json:"issuer,omitempty"`
	Serial  uint64     `json:"serial"` // of the version it makes
	From    deltaFrom  `json:"from"`
	SHA256  string     `json:"sha256"` // of the whole file of the version it makes
	Digest  string     `json:"digest"`
	Issued  time.Time  `json:"issued"`
	Expires *time.Time `json:"expires,omitempty"`
	Hashed  bool       `json:"hashed"`
	Added   changeSet  `json:"added"`
	Removed changeSet  `json:"removed"`
}

type deltaFrom struct {
	Serial uint64 `json:"serial"`
	SHA256 string `json:"sha256"`
}

// changeSet counts a delta's "+" or "-" lines as inspect counts a list's
// entries.
type changeSet struct {
	Entries int `json:"entries"`
	counts
}

func inspectDelta(path string, data []byte, asJSON bool, stdout, stderr io.Writer) int {
	d, err := blocklist.ParseDelta(path, data)
	if err != nil {
		printErrors(stderr, err)
		return fail(stderr, 1, fmt.Errorf("%s is not a valid delta", path), "")
	}
	in := deltaInspection{File: path, Name: d.Name, Issuer: d.Issuer, Serial: d.Serial, Issued: d.Issued, Hashed: d.Hashed(),
		From:   deltaFrom{d.From.Serial, hex.EncodeToString(d.From.SHA256[:])},
		SHA256: hex.EncodeToString(d.SHA256[:]), Digest: d.Checksum.String(),
		Added: changeSet{len(d.Added), countOf(d.Added)}, Removed: changeSet{len(d.Removed), countOf(d.Removed)}}
	if !d.Expires.IsZero() {
		in.Expires = &d.Expires
	}
	if asJSON {
		writeJSON(stdout, in)
		return 0
	}
	fmt.Fprintf(stdout, "%s: delta of list %q from serial %d to %d\n", path, d.Name, d.From.Serial, d.Serial)
	for _, f := range d.Fields() {
		fmt.Fprintf(stdout, "  %-10s %s\n", f.Key+":", f.Value)
	}
	printDelta(stdout, d)
	for _, c := range []struct {
		what string
		set  changeSet
	}{{" added", in.Added}, {" removed", in.Removed}} {
		if c.set.Entries > 0 {
			c.set.print(stdout, c.what, d.Hashed())
		}
	}
	return 0
}

// maxFileSize bounds the lists, deltas and policies the toolkit reads.
const maxFileSize = 1 << 30

// parseFile reads and parses a list, printing every error on stderr.
func parseFile(path string, stderr io.Writer) (*blocklist.List, error) {
	data, err := regularfile.Read(path, maxFileSize)
	if err != nil {
		return nil, err
	}
	return parseList(path, data, stderr)
}

// parseList parses data, the list read from path, printing every error on
// stderr.
func parseList(path string, data []byte, stderr io.Writer) (*blocklist.List, error) {
	if blocklist.IsDeltaData(data) {
		return nil, fmt.Errorf("%s is a delta, not a list (regblock inspect shows what it changes)", path)
	}
	l, err := blocklist.Parse(path, data)
	if err != nil {
		printErrors(stderr, err)
		return nil, fmt.Errorf("%s is not a valid list", path)
	}
	return l, nil
}

// policyInspection is what inspect says of a trust policy.
type policyInspection struct {
	File    string        `json:"file"`
	Serial  uint64        `json:"serial"`
	Issued  time.Time     `json:"issued"`
	Expires *time.Time    `json:"expires,omitempty"`
	Expired bool          `json:"expired"`
	Root    ruleSummary   `json:"root"`
	Lists   []ruleSummary `json:"lists"`
}

type ruleSummary struct {
	Pattern   string   `json:"pattern,omitempty"`
	Threshold int      `json:"threshold"`
	Keys      []string `json:"keys"` // key IDs
	Line      int      `json:"line"`
}

func summarize(pattern string, r trust.Rule) ruleSummary {
	s := ruleSummary{Pattern: pattern, Threshold: r.Threshold, Line: r.Line}
	for _, k := range r.Keys {
		s.Keys = append(s.Keys, fmt.Sprintf("%X", k.ID()))
	}
	return s
}

func inspectPolicy(path string, data []byte, asJSON bool, stdout, stderr io.Writer) int {
	p, err := trust.Parse(path, data)
	if err != nil {
		printErrors(stderr, err)
		return fail(stderr, 1, fmt.Errorf("%s: not a valid trust policy", path), "")
	}
	in := policyInspection{File: path, Serial: p.Serial, Issued: p.Issued, Expired: p.Expired(time.Now()), Root: summarize("", p.Root)}
	if !p.Expires.IsZero() {
		in.Expires = &p.Expires
	}
	for _, r := range p.Lists {
		in.Lists = append(in.Lists, summarize(r.Pattern, r.Rule))
	}
	if asJSON {
		writeJSON(stdout, in)
		return 0
	}
	fmt.Fprintf(stdout, "%s: trust policy serial %d, issued %s\n", path, p.Serial, p.Issued.Format(time.RFC3339))
	if in.Expires != nil {
		fmt.Fprintf(stdout, "  expires:   %s (expired: %v)\n", p.Expires.Format(time.RFC3339), in.Expired)
	}
	fmt.Fprintf(stdout, "  root:      %d of %s\n", p.Root.Threshold, strings.Join(in.Root.Keys, ", "))
	for _, r := range in.Lists {
		fmt.Fprintf(stdout, "  list %-12s %d of %s (line %d)\n", r.Pattern+":", r.Threshold, strings.Join(r.Keys, ", "), r.Line)
	}
	return 0
}
