package netns

import (
	"os"
	"os/exec"
	"testing"
)

// RequireRoot skips the test unless it runs as root and the ip tool from
// iproute2 is installed: both are needed to create network namespaces.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("netns: test needs root to create network namespaces (run: sudo scripts/test)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("netns: test needs the ip tool from iproute2 (run: sudo scripts/setup)")
	}
}
