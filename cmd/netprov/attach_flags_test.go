package main

import (
	"net/netip"
	"testing"
)

func TestIsAttachRun(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want bool
	}{
		{[]string{"--netns", "X", "--attach", "veth0", "--", "curl"}, true},
		{[]string{"--attach=veth0", "--", "sh"}, true},
		{[]string{"--ip", "10.213.0.5", "--", "curl", "--attach"}, false},
		{[]string{"--", "sh"}, false},
	} {
		if got := isAttachRun(tc.args); got != tc.want {
			t.Errorf("isAttachRun(%q) = %v, want %v", tc.args, got, tc.want)
		}
	}
}

func TestParseRouteSpec(t *testing.T) {
	r, err := parseRouteSpec("10.213.99.0/24 via 10.213.70.1 mtu 1400 advmss 1300")
	if err != nil {
		t.Fatal(err)
	}
	if r.Dst != netip.MustParsePrefix("10.213.99.0/24") || r.Gateway != netip.MustParseAddr("10.213.70.1") || r.MTU != 1400 || r.AdvMSS != 1300 {
		t.Errorf("parsed %+v", r)
	}
	r, err = parseRouteSpec("default via fd00:213::1")
	if err != nil || r.Dst != netip.MustParsePrefix("::/0") {
		t.Errorf("IPv6 default: %+v, %v", r, err)
	}
	for _, bad := range []string{"", "10.213.99.0/24 via", "10.213.99.0/24 via fd00::1", "x via 10.213.70.1", "default mtu 20", "default advmss 70000", "default dev eth0"} {
		if _, err := parseRouteSpec(bad); err == nil {
			t.Errorf("parseRouteSpec(%q): want an error", bad)
		}
	}
}

func TestParseAttachFlags(t *testing.T) {
	o, rest, err := parseAttachFlags([]string{"--netns", "X", "--attach", "veth0", "--ip", "10.213.70.7/24", "--route", "default via 10.213.70.1", "--", "curl", "-s"})
	if err != nil {
		t.Fatal(err)
	}
	if o.netns != "/run/netns/X" || o.iface != "veth0" || len(o.ips) != 1 || len(o.routes) != 1 || len(rest) != 2 {
		t.Errorf("parsed %+v, rest %q", o, rest)
	}
	for _, bad := range [][]string{
		{"--attach", "veth0", "--", "sh"},                                        // no --netns
		{"--netns", "X", "--attach", "veth0"},                                    // no command
		{"--netns", "X", "--attach", "veth0", "--ip", "10.213.70.7", "--", "sh"}, // not a CIDR
	} {
		if _, _, err := parseAttachFlags(bad); err == nil {
			t.Errorf("parseAttachFlags(%q): want an error", bad)
		}
	}
}
