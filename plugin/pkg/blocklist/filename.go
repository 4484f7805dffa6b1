package blocklist

import "strings"

// ListSuffix ends the name of a list file in regblock's format.
const ListSuffix = ".list"

// IsList reports whether a file name is a list file: NAME.list, or an RPZ
// zone file NAME.rpz.
func IsList(name string) bool {
	return strings.HasSuffix(name, ListSuffix) && len(name) > len(ListSuffix) || IsRPZ(name)
}

// IsRPZ reports whether a file name is an RPZ zone file (NAME.rpz), read
// as a list in the RPZ format.
func IsRPZ(name string) bool {
	return strings.HasSuffix(name, RPZSuffix) && len(name) > len(RPZSuffix)
}

// TrimSuffix returns a list file's name without .list or .rpz.
func TrimSuffix(name string) string {
	if IsRPZ(name) {
		return strings.TrimSuffix(name, RPZSuffix)
	}
	return strings.TrimSuffix(name, ListSuffix)
}
