package admit

import (
	"errors"
	"testing"
	"time"

	"github.com/regblock/regblock/plugin/pkg/blocklist"
	"github.com/regblock/regblock/plugin/pkg/result"
)

func TestDecide(t *testing.T) {
	list := func(serial uint64, b byte) *blocklist.List {
		return &blocklist.List{Header: blocklist.Header{Name: "x", Serial: serial, Issued: time.Date(2026, 11, 28, 6, 0, 0, 0, time.UTC)}, File: "x.list", SHA256: [32]byte{b}}
	}
	future := func(ahead time.Duration) *blocklist.List {
		l := list(9, 9)
		l.Issued = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC).Add(ahead)
		return l
	}
	for _, tc := range []struct {
		name          string
		inForce, next *blocklist.List
		unchanged     bool
		rollback      bool
	}{
		{"first version", nil, list(1, 1), false, false},
		{"same bytes", list(5, 1), list(5, 1), true, false},
		{"newer", list(5, 1), list(6, 2), false, false},
		{"older", list(5, 1), list(4, 2), false, true},
		{"same serial, other bytes", list(5, 1), list(5, 2), false, true},
		{"issued within the skew", list(5, 1), future(MaxClockSkew), false, false},
	} {
		var mark *Mark
		if tc.inForce != nil {
			mark = MarkOf(tc.inForce)
		}
		unchanged, err := Decide(tc.inForce, mark, tc.next, time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
		if unchanged != tc.unchanged || errors.Is(err, ErrRollback) != tc.rollback {
			t.Errorf("%s: unchanged %v, error %v; want %v, rollback %v", tc.name, unchanged, err, tc.unchanged, tc.rollback)
		}
		if tc.rollback && result.Of(err) != result.Rollback {
			t.Errorf("%s: result %q, want rollback", tc.name, result.Of(err))
		}
	}
	for _, inForce := range []*blocklist.List{nil, list(5, 1)} {
		if _, err := Decide(inForce, nil, future(MaxClockSkew+time.Second), time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)); !errors.Is(err, ErrFromTheFuture) || result.Of(err) != "parse_error" {
			t.Errorf("a version issued past the skew (in force: %v): %v, result %q", inForce != nil, err, result.Of(err))
		}
	}
	// A mark without a version in force: the list was removed.
	for _, tc := range []struct {
		name     string
		next     *blocklist.List
		rollback bool
	}{
		{"below the mark", list(4, 2), true},
		{"the marked version again", list(5, 1), false},
		{"the marked serial, other bytes", list(5, 2), true},
		{"above the mark", list(6, 2), false},
	} {
		unchanged, err := Decide(nil, MarkOf(list(5, 1)), tc.next, time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
		if unchanged || errors.Is(err, ErrRollback) != tc.rollback {
			t.Errorf("no version in force, %s: unchanged %v, %v; want rollback %v", tc.name, unchanged, err, tc.rollback)
		}
	}
	if got := result.Of(&result.Error{Result: result.TooLarge, Err: errors.New("x")}); got != "too_large" {
		t.Errorf("Result of a too_large LoadError: %q", got)
	}
	if got := result.Of(errors.New("x")); got != "io_error" {
		t.Errorf("Result of another error: %q", got)
	}
}
