// Package safename is the rule for the names that become file names in a
// state or receipts directory, metric labels and ledger fields: list names
// and resolver names.
package safename

// Valid reports whether s is a safe name: 1 to 64 letters, digits, '.',
// '_' or '-', starting with a letter or digit, so that no name is ".",
// "..", hidden, a path, or holds a control character.
func Valid(s string) bool {
	if len(s) == 0 || len(s) > 64 || !isAlnum(s[0]) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '.' && c != '_' && c != '-' {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}
