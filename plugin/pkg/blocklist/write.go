package blocklist

import (
	"bufio"
	"errors"
	"io"
)

// Write writes l in regblock's format: its header, then its entries in
// order, each "PATTERN ORDER-REF CATEGORY" ("-" for an absent order
// reference). Comments and spacing of the file l was read from are not
// kept; Parse reads back the same header and entries.
func Write(w io.Writer, l *List) error {
	bw := bufio.NewWriter(w)
	bw.WriteString(versionLine + "\n")
	for _, f := range l.Fields() {
		bw.WriteString("#! " + f.Key + ": " + f.Value + "\n")
	}
	for _, e := range l.Entries {
		if e.Action != Notice {
			return errors.New("blocklist: only entries with the notice answer can be written in regblock's format")
		}
		bw.WriteString(e.Text())
		bw.WriteByte('\n')
	}
	return bw.Flush()
}

// Text returns the entry as a list writes it: "PATTERN ORDER-REF CATEGORY",
// "-" for an absent order reference, and nothing after the last field set.
func (e Entry) Text() string {
	line := e.Pattern()
	if e.Order != "" || e.Category != "" {
		order := e.Order
		if order == "" {
			order = "-"
		}
		line += "  " + order
	}
	if e.Category != "" {
		line += "  " + e.Category
	}
	return line
}
