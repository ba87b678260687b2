package cni

import (
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestExitReason: a stack process that died is reported with how it
// ended (the error of a failed ADD then says whether it was killed).
func TestExitReason(t *testing.T) {
	for _, c := range []struct{ script, want string }{
		{"kill -9 $$", "(killed by signal killed)"},
		{"exit 3", "(exit status 3)"},
	} {
		cmd := exec.Command("sh", "-c", c.script)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		got := ""
		for deadline := time.Now().Add(5 * time.Second); got == "" && time.Now().Before(deadline); {
			time.Sleep(5 * time.Millisecond)
			if r := exitReason(cmd.Process.Pid); !strings.HasPrefix(r, " (state ") {
				got = r // set once it is a zombie
			}
		}
		cmd.Wait()
		if strings.TrimSpace(got) != c.want {
			t.Errorf("%q: exitReason = %q, want %q", c.script, got, c.want)
		}
	}
	if got := exitReason(1); !strings.HasPrefix(got, " (state ") || strings.Contains(got, "Z") {
		t.Errorf("exitReason of a live process = %q, want its state", got)
	}
}
