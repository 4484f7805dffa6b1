package main

import (
	"fmt"
	"io"
	"runtime"

	"github.com/regblock/regblock/plugin/pkg/version"
)

const versionUsage = `Usage: regblock version

Prints the version of this build of regblock, and the Go version and
platform it was built with.

`

func versionCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("version", versionUsage, stderr)
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	if code := require(fs, need{fs.NArg() == 0, "version takes no arguments; got " + gotArgs(fs)}); code >= 0 {
		return code
	}
	fmt.Fprintf(stdout, "regblock %s (%s, %s/%s)\n", version.String(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return 0
}
