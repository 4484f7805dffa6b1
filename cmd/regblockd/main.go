// Command regblockd is CoreDNS with the regblock plugin compiled in, next to
// the CoreDNS plugins an ISP resolver uses (plugins.go lists them). It takes
// CoreDNS's flags (-conf, -version, -plugins, ...).
package main

import (
	"fmt"
	"os"
	"slices"

	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	"github.com/regblock/regblock/plugin/pkg/version"
	"github.com/regblock/regblock/plugin/regblock"
)

func init() {
	// CoreDNS's plugin order, less the plugins not compiled in, with
	// regblock right before cache.
	plugins := compiled()
	dnsserver.Directives = regblock.InsertDirective(slices.DeleteFunc(slices.Clone(dnsserver.Directives), func(d string) bool {
		return !slices.Contains(plugins, d)
	}))
}

func main() {
	// CoreDNS's -version names only CoreDNS: say which regblock first.
	if slices.Contains(os.Args[1:], "-version") {
		fmt.Printf("regblockd %s\n", version.String())
	}
	// CoreDNS ends its version line with the commit it was built from,
	// set by its own Makefile: without it the line ends in ", ".
	coremain.GitCommit = "regblock " + version.String()
	coremain.Run()
}
