package report

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/regblock/regblock/plugin/pkg/atomicfile"
)

// WriteJSON writes the report's JSON, indented, ending in a newline; "<"
// is written as itself, for a reader of "< 10".
func WriteJSON(w io.Writer, r *Report) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// CSVFiles are the files WriteCSV writes.
var CSVFiles = []string{"lists.csv", "versions.csv", "blocked.csv", "isps.csv"}

// WriteCSV writes the report as CSV files in dir, one table each: lists,
// versions (with their enforcement), blocked queries per list per day, and
// ISPs. Unknown figures are empty cells; counts below the threshold read
// "< k", as on the page.
func WriteCSV(dir string, r *Report) error {
	tables := map[string][][]string{}
	lists := [][]string{{"list", "issuer", "authority", "hashed", "versions", "added", "removed", "orders", "entries"}}
	versions := [][]string{{"list", "serial", "issued", "sha256", "added", "removed", "entries", "resolvers", "within_deadline", "never", "median_seconds", "p95_seconds", "worst_seconds"}}
	blocked := [][]string{{"list", "date", "queries"}}
	for _, l := range r.Lists {
		lists = append(lists, []string{l.Name, l.Issuer, l.Authority, strconv.FormatBool(l.Hashed), strconv.Itoa(len(l.Versions)),
			strconv.Itoa(l.Added), strconv.Itoa(l.Removed), strconv.Itoa(l.Orders), intCell(l.Entries)})
		for _, v := range l.Versions {
			versions = append(versions, []string{l.Name, strconv.FormatUint(v.Serial, 10), v.Issued.Format(time.RFC3339), v.SHA256,
				intCell(v.Added), intCell(v.Removed), intCell(v.Entries), strconv.Itoa(v.Resolvers), floatCell(v.WithinDeadline),
				strings.Join(v.Never, " "), floatCell(v.MedianSeconds), floatCell(v.P95Seconds), floatCell(v.WorstSeconds)})
		}
		for _, d := range l.BlockedPerDay {
			blocked = append(blocked, []string{l.Name, d.Date, d.Queries.Shown()})
		}
	}
	isps := [][]string{{"key", "resolvers", "within_deadline"}}
	for _, i := range r.ISPs {
		isps = append(isps, []string{i.Key, strconv.Itoa(i.Resolvers), floatCell(i.WithinDeadline)})
	}
	tables["lists.csv"], tables["versions.csv"], tables["blocked.csv"], tables["isps.csv"] = lists, versions, blocked, isps
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, name := range CSVFiles {
		for _, row := range tables[name][1:] {
			for i := range row {
				row[i] = textCell(row[i])
			}
		}
		var buf bytes.Buffer
		w := csv.NewWriter(&buf)
		w.WriteAll(tables[name])
		if err := w.Error(); err != nil {
			return err
		}
		if err := atomicfile.Write(filepath.Join(dir, name), buf.Bytes(), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// textCell keeps a spreadsheet from taking a cell for a formula (an
// issuer is the publisher's text, a resolver's name a file's, a key a
// stored line's): one starting with '=', '+', '-', '@', a tab or a
// carriage return gets a leading apostrophe, as OWASP advises.
func textCell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

func intCell(n *int) string {
	if n == nil {
		return ""
	}
	return strconv.Itoa(*n)
}

func floatCell(f *float64) string {
	if f == nil {
		return ""
	}
	return strconv.FormatFloat(*f, 'f', -1, 64)
}
