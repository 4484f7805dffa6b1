package blocklist

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestLint(t *testing.T) {
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		headers string
		entries string
		want    []string // "LINE: substring"
	}{
		{"clean", "", "abuse.example\n=cdn.hosting.example\n!help.abuse.example\n*.bulk.example\n=deep.help.abuse.example\n", nil},
		{"duplicate", "", "abuse.example ORDER-1\nabuse.example ORDER-2\n", []string{"6: duplicate entry abuse.example (also on line 5)"}},
		{"shadowed below a subtree", "", "abuse.example\nwww.abuse.example\n=cdn.abuse.example\n", []string{
			"6: entry www.abuse.example is already blocked by abuse.example (line 5)",
			"7: entry =cdn.abuse.example is already blocked by abuse.example (line 5)"}},
		{"shadowed below a wildcard", "", "*.bulk.example\nx.bulk.example\n", []string{"6: entry x.bulk.example is already blocked by *.bulk.example (line 5)"}},
		{"exact beside a subtree", "", "abuse.example\n=abuse.example\n", []string{"6: entry =abuse.example is already blocked by abuse.example"}},
		{"not shadowed under an exception", "", "abuse.example\n!help.abuse.example\n=deep.help.abuse.example\n", nil},
		{"exact beside an exception", "", "abuse.example\n!x.abuse.example\n=x.abuse.example\n", nil},
		{"exception unblocking nothing", "", "abuse.example\n!other.example\n", []string{"6: exception !other.example unblocks nothing"}},
		{"exception under a wildcard", "", "*.bulk.example\n!x.bulk.example\n", nil},
		{"hashed: duplicates only", "#! hashed: sha256 " + vectorSalt + "\n", "h:2fab027504c360eeda1416ada192b061\n=h:31a299cd82742ffcb6635ee2021ee697\n!h:ecc32e4727f6af650849684e1757552b\nh:2fab027504c360eeda1416ada192b061\n", []string{
			"8: duplicate entry h:2fab027504c360eeda1416ada192b061 (also on line 6)"}},
		{"expired", "#! expires: 2026-11-28T07:00:00Z\n", "abuse.example\n", []string{"1: expires 2026-11-28T07:00:00Z is already past"}},
		{"expires before issued", "#! expires: 2026-11-27T07:00:00Z\n", "abuse.example\n", []string{"1: expires 2026-11-27T07:00:00Z is before issued"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l, err := Parse("lint.list", []byte(header+tc.headers+tc.entries))
			if err != nil {
				t.Fatal(err)
			}
			// The extra header lines shift the entries; lines in want assume none.
			shift := strings.Count(tc.headers, "\n")
			var got []string
			for _, w := range Lint(l, now) {
				line := w.Line
				if line > 1 {
					line -= shift
				}
				got = append(got, fmt.Sprintf("%d: %s", line, w.Msg))
			}
			if len(got) != len(tc.want) {
				t.Fatalf("warnings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
			for i := range got {
				if !strings.HasPrefix(got[i], tc.want[i]) {
					t.Errorf("warning %d: %q, want %q…", i, got[i], tc.want[i])
				}
			}
		})
	}
}
