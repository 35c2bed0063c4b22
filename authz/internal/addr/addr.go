// Package addr tells public internet addresses and host names from the
// others, for every place the authorization server accepts a URL it or a
// browser will reach: registered redirect and launch URIs, and the JWKS
// URLs it fetches (which must not become a way into the private network).
package addr

import (
	"net/netip"
	"strings"
)

// nonPublic are prefixes IsGlobalUnicast lets through that do not reach
// the public internet.
var nonPublic = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"), // carrier-grade NAT
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("64:ff9b::/96"), // NAT64: IPv4 behind IPv6
	netip.MustParsePrefix("2001:db8::/32"),
	netip.MustParsePrefix("fec0::/10"),
}

// PublicIP reports whether ip is a public unicast address (an IPv4-mapped
// IPv6 address as its IPv4 one).
func PublicIP(ip netip.Addr) bool {
	ip = ip.Unmap()
	if !ip.IsGlobalUnicast() || ip.IsPrivate() {
		return false
	}
	for _, p := range nonPublic {
		if p.Contains(ip) {
			return false
		}
	}
	return true
}

// PublicHost reports whether a URL's host (as url.URL.Hostname gives it)
// names a public host: a public address written plainly, or a dotted
// name that is not localhost's and that a browser would not read as an
// IPv4 address (WHATWG URL parses a host whose last label is a number —
// decimal, or 0x hex — as one: 127.1, 0177.0.0.1, 0x7f.1).
func PublicHost(host string) bool {
	h := strings.TrimSuffix(strings.ToLower(host), ".")
	if h == "" || h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return false
	}
	if ip, err := netip.ParseAddr(h); err == nil {
		return PublicIP(ip)
	}
	if !strings.Contains(h, ".") {
		return false // a bare name is a local one
	}
	last := h[strings.LastIndexByte(h, '.')+1:]
	if hex, ok := strings.CutPrefix(last, "0x"); ok {
		return strings.Trim(hex, "0123456789abcdef") != ""
	}
	return last == "" || strings.Trim(last, "0123456789") != ""
}
