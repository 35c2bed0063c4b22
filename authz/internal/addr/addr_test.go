package addr

import (
	"net/netip"
	"testing"
)

func TestPublicIP(t *testing.T) {
	for ip, want := range map[string]bool{
		"8.8.8.8": true, "2606:4700::1111": true, "::ffff:8.8.8.8": true,
		"127.0.0.1": false, "10.1.2.3": false, "172.16.0.1": false, "192.168.1.1": false, "169.254.169.254": false,
		"100.64.0.1": false, "0.1.2.3": false, "192.0.0.8": false, "198.18.0.1": false, "240.0.0.1": false, "255.255.255.255": false,
		"::1": false, "fe80::1": false, "fc00::1": false, "64:ff9b::7f00:1": false, "2001:db8::1": false, "fec0::1": false, "::ffff:127.0.0.1": false, "::": false,
		"127.0.1.1": false, "::ffff:10.0.0.1": false, "0.0.0.0": false, "224.0.0.1": false, "ff02::1": false, "64:ff9b::a00:1": false, "192.0.0.170": false, "fd00::1": false,
	} {
		if got := PublicIP(netip.MustParseAddr(ip)); got != want {
			t.Errorf("PublicIP(%s) = %v, want %v", ip, got, want)
		}
	}
}

func TestPublicHost(t *testing.T) {
	for host, want := range map[string]bool{
		"app.example.org": true, "app.example.org.": true, "8.8.8.8": true, "2606:4700::1111": true, "x1.example.com": true, "a.0x1g": true,
		"": false, "localhost": false, "LOCALHOST": false, "app.localhost": false, "intranet": false,
		"127.0.0.1": false, "127.1": false, "0177.0.0.1": false, "0x7f.0.0.1": false, "0x7f.1": false, "10.1.1": false, "2130706433": false,
		"::1": false, "64:ff9b::7f00:1": false, "169.254.169.254": false,
		"LOCALHOST.": false, "10.0.0.1": false, "0.0.0.0": false, "::ffff:127.0.0.1": false, "100.64.0.1": false, "fd00::1": false,
	} {
		if got := PublicHost(host); got != want {
			t.Errorf("PublicHost(%q) = %v, want %v", host, got, want)
		}
	}
}
