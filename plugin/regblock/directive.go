package regblock

import "slices"

// InsertDirective returns directives (CoreDNS's plugin order) with regblock
// right before cache: block answers are then never cached by CoreDNS, and a
// list change takes effect on the next query. It panics if directives has no
// cache, since regblock's place would then be a guess.
func InsertDirective(directives []string) []string {
	i := slices.Index(directives, "cache")
	if i < 0 {
		panic("regblock: no \"cache\" in the plugin order to insert regblock before")
	}
	if slices.Contains(directives, pluginName) {
		return directives
	}
	return slices.Insert(slices.Clone(directives), i, pluginName)
}
