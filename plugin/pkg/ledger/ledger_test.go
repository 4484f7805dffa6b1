package ledger

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func u64(v uint64) *uint64 { return &v }

// chain writes events as the plugin does, with a block event between each
// two, and returns the text.
func chain(t *testing.T, n int) (string, string) {
	t.Helper()
	var b bytes.Buffer
	head := ""
	for i := range n {
		e := Event{Time: time.Date(2026, 11, 28, 6, i, 0, 0, time.UTC), Event: ListApplied, List: "a", Serial: u64(uint64(i + 1)), SHA256: fmt.Sprintf("%064x", i)}
		line, h, err := Seal(&e, head)
		if err != nil {
			t.Fatal(err)
		}
		head = h
		b.Write(line)
		b.WriteString("\n")
		fmt.Fprintf(&b, `{"time":"2026-11-28T06:%02d:30Z","event":"block","list":"a","qname":"abuse.example."}`+"\n", i)
	}
	return b.String(), head
}

func TestCheck(t *testing.T) {
	text, head := chain(t, 4)
	events, got, err := Check(strings.NewReader(text), "audit.jsonl", "")
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 4 || got != head || *events[3].Serial != 4 {
		t.Errorf("Check: %d events, head %s (want %s)", len(events), got, head)
	}

	lines := strings.SplitAfter(text, "\n")
	tests := []struct {
		name string
		text string
		line int
	}{
		{"ledger line removed", strings.Join(append(append([]string{}, lines[:2]...), lines[4:]...), ""), 3},
		{"ledger line edited", strings.Replace(text, `"serial":2`, `"serial":9`, 1), 5},
		{"first line cut, with the head known", strings.Join(lines[2:], ""), 1},
		{"not JSON", text + "garbage\n", 9},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			start := ""
			if strings.HasPrefix(tc.name, "first line cut") {
				start = Hash([]byte("a ledger line the file no longer starts from"))
			}
			_, _, err := Check(strings.NewReader(tc.text), "audit.jsonl", start)
			if err == nil || !strings.HasPrefix(err.Error(), fmt.Sprintf("audit.jsonl:%d:", tc.line)) {
				t.Errorf("got %v, want an error at line %d", err, tc.line)
			}
		})
	}

	// The rest of a file continues from the head of its start.
	if _, _, err := Check(strings.NewReader(strings.Join(lines[2:], "")), "x", Hash([]byte(strings.TrimSuffix(lines[0], "\n")))); err != nil {
		t.Errorf("the continuation of a chain is refused: %v", err)
	}
	// Block lines are not chained: removing one is not an error.
	if _, _, err := Check(strings.NewReader(strings.Join(append([]string{lines[0]}, lines[2:]...), "")), "x", ""); err != nil {
		t.Errorf("a removed block line broke the chain: %v", err)
	}
	// Continuing from the head of an earlier file.
	more, _ := chain(t, 1)
	if _, _, err := Check(strings.NewReader(more), "next", head); !errors.Is(err, ErrBroken) {
		t.Errorf("a new chain that does not continue the old head: %v", err)
	}
}

// TestTornLastLine: a last line cut short (no newline, not JSON), as a
// full disk leaves a block event in a file then rotated, is passed by; a
// line that does not parse anywhere else, or with its newline, is an error.
func TestTornLastLine(t *testing.T) {
	var buf bytes.Buffer
	head := ""
	for i := range 2 {
		serial := uint64(i + 1)
		line, h, err := Seal(&Event{Event: ListApplied, List: "a", Serial: &serial}, head)
		if err != nil {
			t.Fatal(err)
		}
		buf.Write(append(line, '\n'))
		head = h
	}
	whole := buf.String()
	for _, tc := range []struct {
		text string
		ok   bool
	}{
		{whole + `{"event":"block","li`, true},
		{whole + `{"event":"block","li` + "\n", false},
		{`{"event":"blo` + "\n" + whole, false},
	} {
		lines, _, err := CheckLines(strings.NewReader(tc.text), "audit.jsonl", "")
		if (err == nil) != tc.ok || tc.ok && len(lines) != 2 {
			t.Errorf("%q: %d lines, %v; want ok %v", tc.text, len(lines), err, tc.ok)
		}
	}
}
