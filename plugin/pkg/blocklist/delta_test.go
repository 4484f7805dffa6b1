package blocklist

import (
	"strings"
	"testing"
)

// TestParseDeltaErrors: what a delta may not say, each error naming its
// line.
func TestParseDeltaErrors(t *testing.T) {
	head := "#! regblock-delta 1\n#! name: a\n#! from: 1 " + strings.Repeat("00", 32) + "\n#! serial: 2\n#! issued: 2026-11-28T06:00:00Z\n#! sha256: " +
		strings.Repeat("11", 32) + "\n#! digest: " + strings.Repeat("22", 16) + "\n"
	for _, tc := range []struct{ body, want string }{
		{"- ghost.example\n+ ghost.example\n", `d.delta:9: "ghost.example" is both removed and added (line 8)`},
		{"+ ghost.example O-1\n- ghost.example O-1\n", `d.delta:9: "ghost.example" is both removed and added (line 8)`},
		{"+ ip:192.0.2.0/24\n", `d.delta:8: address entry "ip:192.0.2.0/24"`},
		{"new.example\n", "d.delta:8:"},
	} {
		_, err := ParseDelta("d.delta", []byte(head+tc.body))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.body, err, tc.want)
		}
	}
	// A serial not above the one it starts from is the serial line's error.
	if _, err := ParseDelta("d.delta", []byte(strings.Replace(head, "serial: 2", "serial: 1", 1))); err == nil || !strings.Contains(err.Error(), "d.delta:4: serial 1 is not above") {
		t.Errorf("a serial that does not go up: %v", err)
	}
	// The same name with another order is another entry: a changed one.
	if _, err := ParseDelta("d.delta", []byte(head+"- kept.example O-1\n+ kept.example O-2\n")); err != nil {
		t.Errorf("an entry whose order changed: %v", err)
	}
}
