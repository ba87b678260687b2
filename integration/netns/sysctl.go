package netns

import (
	"strings"
	"testing"
)

// Sysctl sets a sysctl inside the namespace, e.g.
// Sysctl(t, "net.ipv4.ip_forward", "1"). Only net.* sysctls belong to a
// namespace; others would change the whole machine and are refused.
func (ns *NS) Sysctl(t testing.TB, key, value string) {
	t.Helper()
	if !strings.HasPrefix(key, "net.") {
		t.Fatalf("netns %s: sysctl %s is not per-namespace (only net.* are)", ns.name, key)
	}
	ns.Run(t, "sysctl", "-q", "-w", key+"="+value)
}

// GetSysctl reads a sysctl inside the namespace.
func (ns *NS) GetSysctl(t testing.TB, key string) string {
	t.Helper()
	return strings.TrimSpace(string(ns.Run(t, "sysctl", "-n", key)))
}
