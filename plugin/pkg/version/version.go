// Package version says which regblock a binary is.
package version

import (
	"runtime/debug"
)

// stamped is set at build time by release builds:
//
//	go build -ldflags "-X github.com/regblock/regblock/plugin/pkg/version.stamped=v1.2.3" ./cmd/...
var stamped string

// String returns the version stamped at build time, or else "devel" with
// the commit the binary was built from (and "-dirty" for uncommitted
// changes), as the Go toolchain records it in a checkout.
func String() string {
	if stamped != "" {
		return stamped
	}
	v := "devel"
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return v
	}
	var revision string
	dirty := false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			revision = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if len(revision) > 12 {
		revision = revision[:12]
	}
	if revision != "" {
		v += "+" + revision
		if dirty {
			v += "-dirty"
		}
	}
	return v
}
