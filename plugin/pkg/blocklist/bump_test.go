package blocklist

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestBumpRoundTrip bumps lists and parses them back: the serial and issued
// time are the new ones, everything else parses as before, and every line
// but the two rewritten is the same byte for byte.
func TestBumpRoundTrip(t *testing.T) {
	issued := time.Date(2026, 12, 1, 9, 30, 0, 0, time.UTC)
	for _, text := range []string{
		"#! regblock-list 1\n#! name: a\n#! serial: 7\n#! issued: 2026-11-28T06:00:00Z\nabuse.example ORDER-1 csam\n",
		"#! regblock-list 1\n#!name:a\n#!   serial:   7   \n#! issued: 2026-11-28T06:00:00+08:00\n#! canary: canary.a.regblock.test\n# serial: 1 in a comment\n!help.abuse.example\n",
	} {
		before, err := Parse("a.list", []byte(text))
		if err != nil {
			t.Fatal(err)
		}
		data, err := Bump([]byte(text), before.Serial+1, issued.In(time.FixedZone("x", 3600)))
		if err != nil {
			t.Fatal(err)
		}
		after, err := Parse("a.list", data)
		if err != nil {
			t.Fatalf("a bumped list does not parse: %v\n%s", err, data)
		}
		if after.Serial != 8 || !after.Issued.Equal(issued) {
			t.Errorf("bumped to serial %d issued %v, want 8 and %v", after.Serial, after.Issued, issued)
		}
		after.Serial, after.Issued, after.SHA256 = before.Serial, before.Issued, before.SHA256
		if !reflect.DeepEqual(after, before) {
			t.Errorf("bumping changed more than serial and issued:\n%+v\n%+v", after, before)
		}
		old, bumped := strings.Split(text, "\n"), strings.Split(string(data), "\n")
		changed := 0
		for i := range old {
			if old[i] != bumped[i] {
				changed++
			}
		}
		if len(old) != len(bumped) || changed != 2 {
			t.Errorf("bumping changed %d lines (of %d, now %d), want 2", changed, len(old), len(bumped))
		}
	}
	if _, err := Bump([]byte("#! regblock-list 1\n#! name: a\n"), 1, issued); err == nil {
		t.Error("Bump of a list without serial and issued lines: no error")
	}
}
