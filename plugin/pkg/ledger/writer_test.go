package ledger

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestHeadRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	if _, _, _, err := ReadHead(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("no head: %v, want ErrNotExist", err)
	}
	if err := WriteHead(path, "abc", 42); err != nil {
		t.Fatal(err)
	}
	if head, n, counted, err := ReadHead(path); head != "abc" || n != 42 || !counted || err != nil {
		t.Errorf("ReadHead = %q %d %v %v, want abc 42 true", head, n, counted, err)
	}
	for text, want := range map[string]struct {
		head    string
		counted bool
		err     error
	}{
		"abc\n":      {"abc", false, nil}, // written before heads had counts
		"":           {"", true, nil},
		"abc x12\n":  {"abc", false, ErrHeadCount},
		"abc -1 z\n": {"abc", false, ErrHeadCount},
	} {
		os.WriteFile(path+".head", []byte(text), 0o644)
		head, _, counted, err := ReadHead(path)
		if head != want.head || counted != want.counted || !errors.Is(err, want.err) {
			t.Errorf("head %q: %q %v %v, want %q %v %v", text, head, counted, err, want.head, want.counted, want.err)
		}
	}
}

func TestCutPartialLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	for text, want := range map[string]string{
		"a\nb\n":                               "a\nb\n",
		"a\nb\npart":                           "a\nb\n",
		"part":                                 "",
		"a\n" + strings.Repeat("x", 10000):     "a\n",
		strings.Repeat("y", 5000) + "\n" + "z": strings.Repeat("y", 5000) + "\n",
	} {
		os.WriteFile(path, []byte(text), 0o644)
		if err := CutPartialLine(path); err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(path); string(got) != want {
			t.Errorf("%.20q: left %.20q, want %.20q", text, got, want)
		}
	}
}

// TestWriterChain writes ledger and block lines, stops, starts again and
// goes on: one chain, whose head and count FILE.head keeps.
func TestWriterChain(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	failed := func(what string, err error) { t.Errorf("%s: %v", what, err) }
	appendN := func(w *Writer, from, n int) {
		for i := from; i < from+n; i++ {
			if err := w.Append(Event{Time: time.Unix(int64(i), 0).UTC(), Event: ListApplied, List: "a", Serial: u64(uint64(i))}); err != nil {
				t.Fatal(err)
			}
			if err := w.WriteLine([]byte(`{"event":"block","list":"a"}` + "\n")); err != nil {
				t.Fatal(err)
			}
		}
	}
	w, warning, err := Open(path, failed)
	if err != nil || warning != nil {
		t.Fatal(err, warning)
	}
	appendN(w, 1, 3)
	w.Close()
	// A crash left half a block line; the next start cuts it off.
	f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString(`{"event":"blo`)
	f.Close()
	if w, warning, err = Open(path, failed); err != nil || warning != nil {
		t.Fatal(err, warning)
	}
	appendN(w, 4, 2)
	head, events := w.Chain()
	if !w.Healthy() || w.Held() != 0 {
		t.Error("a writer that wrote everything says it holds something")
	}
	w.Close()

	f, _ = os.Open(path)
	evs, last, err := Check(f, path, "")
	f.Close()
	if err != nil || len(evs) != 5 || events != 5 || last != head {
		t.Fatalf("chain: %d events (writer: %d), %v; last %.8s, writer's head %.8s", len(evs), events, err, last, head)
	}
	if h, n, _, err := ReadHead(path); h != head || n != 5 || err != nil {
		t.Errorf("head %.8s %d %v, want %.8s 5", h, n, err, head)
	}
}

// TestReadChainPastHead: a head the disk refused to update, or a crash
// between a line and its head, leaves FILE.head behind the file; the chain
// goes on from the last line, and the count does not go back.
func TestReadChainPastHead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	w, _, err := Open(path, func(string, error) {})
	if err != nil {
		t.Fatal(err)
	}
	var heads []string
	for i := range 4 {
		w.Append(Event{Event: ListApplied, List: "a", Serial: u64(uint64(i + 1))})
		h, _ := w.Chain()
		heads = append(heads, h)
	}
	w.Close()
	WriteHead(path, heads[1], 2) // two lines behind
	if head, n, err := ReadChain(path); head != heads[3] || n != 4 || err != nil {
		t.Errorf("ReadChain = %.8s %d %v, want %.8s 4", head, n, err, heads[3])
	}
	WriteHead(path, strings.Repeat("0", 64), 9) // names no line of the file
	if head, n, err := ReadChain(path); head != strings.Repeat("0", 64) || n != 9 || !errors.Is(err, ErrHeadNotInFile) {
		t.Errorf("a head not in the file: %.8s %d %v, want the head, 9 and ErrHeadNotInFile", head, n, err)
	}
}

func TestMatch(t *testing.T) {
	text, _ := chain(t, 4)
	lines, _, err := CheckLines(strings.NewReader(text), "audit.jsonl", "")
	if err != nil {
		t.Fatal(err)
	}
	// The file holds events 11 to 14 of the resolver's chain.
	at := func(i int, n uint64) Commitment { return Commitment{Head: lines[i].Hash, Events: n} }
	if m := Match(lines, []Commitment{at(1, 12), at(3, 14), {Events: 0}}); m.Offset != 10 || !m.Placed || m.Checked != 2 || len(m.Problems) != 0 {
		t.Errorf("receipts that agree: %+v", m)
	}
	m := Match(lines, []Commitment{at(1, 12), at(2, 12), {Head: "ff", Events: 20}, {Head: "ee", Events: 13}})
	if m.Checked != 1 || len(m.Problems) != 3 {
		t.Fatalf("receipts the lines contradict: %+v", m)
	}
	for i, want := range []string{"added or removed before it", "the head was cut", "edited or rewritten"} {
		if !strings.Contains(m.Problems[i], want) {
			t.Errorf("problem %d: %q, want %q", i, m.Problems[i], want)
		}
	}
}

func TestGarbageMidFileBreaksTheChain(t *testing.T) {
	text, _ := chain(t, 3)
	lines := strings.SplitAfter(text, "\n")
	lines[1] = "not json\n" // a block event's line, mangled
	_, _, err := CheckLines(strings.NewReader(strings.Join(lines, "")), "audit.jsonl", "")
	if !errors.Is(err, ErrBroken) || !strings.Contains(err.Error(), "audit.jsonl:2:") {
		t.Errorf("a garbled line before the end: %v, want ErrBroken at line 2", err)
	}
}
