package agent

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// buildNetprov builds the netprov binary (the one CNI ADD runs) into a
// temp dir.
func buildNetprov(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	repo := filepath.Join(filepath.Dir(file), "..", "..") // cni/agent → repository root
	bin := filepath.Join(t.TempDir(), "netprov")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/netprov")
	cmd.Dir = repo
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/netprov: %v\n%s", err, out)
	}
	return bin
}

// TestEnsureRunningConcurrent: several CNI ADDs at once start exactly one
// agent, which outlives them; a second round finds it running; after it
// is killed, the next call starts a new one.
func TestEnsureRunningConcurrent(t *testing.T) {
	needRoot(t)
	bin := buildNetprov(t)
	dir := t.TempDir()
	sock := filepath.Join(dir, "agent.sock")
	cfg := EnsureConfig{Socket: sock, StateDir: filepath.Join(dir, "state"), Binary: bin, Timeout: 10 * time.Second}
	killAgent := func() {
		if pid, ok := LivePID(sock); ok {
			unix.Kill(pid, unix.SIGKILL)
			for i := 0; i < 100 && unix.Kill(pid, 0) == nil; i++ {
				var ws unix.WaitStatus
				unix.Wait4(pid, &ws, unix.WNOHANG, nil) // reap if it is our child
				time.Sleep(20 * time.Millisecond)
			}
		}
	}
	t.Cleanup(killAgent)

	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = EnsureRunning(context.Background(), cfg)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("EnsureRunning #%d: %v\nlog:\n%s", i, err, readTail(filepath.Join(dir, "agent.log")))
		}
	}
	pid, err := PID(sock)
	if err != nil {
		t.Fatalf("no pid file: %v", err)
	}
	if unix.Kill(pid, 0) != nil {
		t.Fatalf("agent pid %d not alive", pid)
	}
	if !Alive(sock) {
		t.Fatal("agent does not answer")
	}
	// Exactly one agent holds the lock: a further start loses.
	if _, err := Lock(sock); err != ErrRunning {
		t.Fatalf("Lock while an agent runs: %v, want ErrRunning", err)
	}
	if err := EnsureRunning(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	if again, _ := PID(sock); again != pid {
		t.Fatalf("second EnsureRunning replaced agent %d with %d", pid, again)
	}

	// The losers of the concurrent start may still be starting (exec is
	// slow under load); one that took the lock after the kill would
	// answer. Wait (bounded) until the winner is the only agent left.
	for i := 0; ; i++ {
		pids := agentProcesses(sock)
		if len(pids) == 1 && pids[0] == pid {
			break
		}
		if i == 500 {
			t.Fatalf("agent processes for %s: %v, want only %d", sock, pids, pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
	killAgent()
	if Alive(sock) {
		t.Fatal("killed agent still answers")
	}
	if err := EnsureRunning(context.Background(), cfg); err != nil {
		t.Fatalf("restart after a crash: %v", err)
	}
	if np, _ := PID(sock); np == pid || np == 0 {
		t.Fatalf("no new agent after the crash (pid %d)", np)
	}
	if _, err := os.Stat(sock); err != nil {
		t.Fatal(err)
	}
}

// agentProcesses lists the live (not zombie) processes running `netprov
// agent --socket sock`.
func agentProcesses(sock string) []int {
	want := []byte("agent\x00--socket\x00" + sock + "\x00")
	var pids []int
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile("/proc/" + d.Name() + "/cmdline")
		if err != nil || !bytes.Contains(cmdline, want) {
			continue
		}
		if stat, err := os.ReadFile("/proc/" + d.Name() + "/stat"); err == nil && bytes.Contains(stat, []byte(") Z ")) {
			continue
		}
		pids = append(pids, pid)
	}
	return pids
}

// LivePID trusts a pid file only for a live agent of that socket: a file
// naming another process (a reused pid) or a missing file gives nothing.
func TestLivePIDIgnoresOtherProcesses(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "agent.sock")
	if _, ok := LivePID(sock); ok {
		t.Error("LivePID without a pid file")
	}
	if err := os.WriteFile(sock+".pid", []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if pid, ok := LivePID(sock); ok {
		t.Errorf("LivePID trusted pid %d, the test process, as the agent", pid)
	}
}
