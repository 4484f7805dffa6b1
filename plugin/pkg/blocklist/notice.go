package blocklist

import (
	"fmt"
	"net/netip"
)

// ParseNoticeAddr parses a notice address, the address a blocked name
// resolves to: IPv4 or IPv6, without a zone; an IPv4-mapped IPv6 address
// is taken as the IPv4 address. The resolver's notice option, export
// -notice and audit -notice all read them so.
func ParseNoticeAddr(s string) (netip.Addr, error) {
	addr, err := netip.ParseAddr(s)
	if err != nil || addr.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("%q is not an IPv4 or IPv6 address", s)
	}
	return addr.Unmap(), nil
}
