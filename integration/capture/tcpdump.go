package capture

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/netprov/netprov/integration/netns"
)

// Capture is a running tcpdump.
type Capture struct {
	cmd  *exec.Cmd
	path string
	done chan struct{}
}

// Start runs tcpdump on iface inside ns with a BPF filter and waits until it
// is listening. It is stopped by Stop or, at the latest, by the test's cleanup.
func Start(t testing.TB, ns *netns.NS, iface, filter string) *Capture {
	t.Helper()
	if _, err := exec.LookPath("tcpdump"); err != nil {
		t.Skip("tcpdump not installed (scripts/setup installs it)")
	}
	c := &Capture{path: filepath.Join(t.TempDir(), "capture.pcap"), done: make(chan struct{})}
	args := []string{"netns", "exec", ns.Name(), "tcpdump", "-i", iface, "--immediate-mode", "-U", "-n", "-s", "256", "-w", c.path}
	if filter != "" {
		args = append(args, filter)
	}
	c.cmd = exec.Command("ip", args...)
	stderr, err := c.cmd.StderrPipe()
	if err != nil {
		t.Fatalf("tcpdump: %v", err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("start tcpdump: %v", err)
	}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		signalled := false
		for sc.Scan() {
			if !signalled && strings.Contains(sc.Text(), "listening on") {
				close(ready)
				signalled = true
			}
		}
		if !signalled {
			close(ready)
		}
		close(c.done)
	}()
	select {
	case <-ready:
	case <-time.After(10 * time.Second):
		c.kill()
		t.Fatal("tcpdump did not start listening within 10 s")
	}
	t.Cleanup(c.kill)
	return c
}

func (c *Capture) kill() {
	if c.cmd.ProcessState == nil {
		_ = c.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-c.done:
		case <-time.After(5 * time.Second):
			_ = c.cmd.Process.Kill()
		}
		_ = c.cmd.Wait()
	}
}

// Stop ends the capture and returns the frames it recorded.
func (c *Capture) Stop(t testing.TB) []Frame {
	t.Helper()
	// Give tcpdump a moment to write what the kernel already handed it.
	time.Sleep(100 * time.Millisecond)
	c.kill()
	f, err := os.Open(c.path)
	if err != nil {
		t.Fatalf("open capture: %v", err)
	}
	defer f.Close()
	_, frames, err := ReadPcap(f)
	if err != nil {
		t.Fatalf("read capture: %v", err)
	}
	return frames
}
