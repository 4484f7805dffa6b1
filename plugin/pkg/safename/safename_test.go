package safename

import (
	"strings"
	"testing"
)

func TestValid(t *testing.T) {
	for name, want := range map[string]bool{
		"mcmc-csam": true, "court.2026_01": true, "9lives": true, strings.Repeat("a", 64): true,
		"": false, ".": false, "..": false, ".hidden": false, "-x": false, "a/b": false, "a b": false,
		"a\x00": false, "é": false, strings.Repeat("a", 65): false,
	} {
		if Valid(name) != want {
			t.Errorf("Valid(%q) = %v, want %v", name, !want, want)
		}
	}
}
