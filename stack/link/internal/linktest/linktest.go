// Package linktest helps the link endpoint tests: a recording dispatcher,
// frame builders and parsers, and the few device helpers the link tests
// need on top of the project's namespace kit (integration/netns), which
// creates the namespaces and veth pairs and removes them with t.Cleanup.
package linktest

import (
	"os"
	"testing"

	"github.com/netprov/netprov/integration/netns"
	"github.com/netprov/netprov/stack/header"
)

// RequireRoot skips the test unless it may create namespaces (see
// netns.RequireRoot) and /dev/net/tun exists.
func RequireRoot(t testing.TB) {
	t.Helper()
	netns.RequireRoot(t)
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		t.Skipf("skipping: /dev/net/tun not available: %v", err)
	}
}

// KernelMAC returns the MAC address the kernel gives dev in ns.
func KernelMAC(t testing.TB, ns *netns.NS, dev string) header.MAC {
	t.Helper()
	return header.MAC(ns.HardwareAddr(t, dev))
}
