// Command regblockd is CoreDNS with the regblock plugin compiled in, next to
// all of CoreDNS's standard plugins. It takes CoreDNS's flags (-conf,
// -version, -plugins, ...).
package main

import (
	"fmt"
	"os"
	"slices"

	"github.com/coredns/coredns/core/dnsserver"
	_ "github.com/coredns/coredns/core/plugin" // CoreDNS's standard plugins.
	"github.com/coredns/coredns/coremain"

	"github.com/regblock/regblock/plugin/pkg/version"
	"github.com/regblock/regblock/plugin/regblock"
)

func init() {
	dnsserver.Directives = regblock.InsertDirective(dnsserver.Directives)
}

func main() {
	// CoreDNS's -version names only CoreDNS: say which regblock first.
	if slices.Contains(os.Args[1:], "-version") {
		fmt.Printf("regblockd %s\n", version.String())
	}
	coremain.Run()
}
