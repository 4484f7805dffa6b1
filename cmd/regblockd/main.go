// Command regblockd is CoreDNS with the regblock plugin compiled in, next to
// all of CoreDNS's standard plugins. It takes CoreDNS's flags (-conf,
// -version, -plugins, ...).
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	_ "github.com/coredns/coredns/core/plugin" // CoreDNS's standard plugins.
	"github.com/coredns/coredns/coremain"

	"github.com/regblock/regblock/plugin/regblock"
)

func init() {
	dnsserver.Directives = regblock.InsertDirective(dnsserver.Directives)
}

func main() {
	coremain.Run()
}
