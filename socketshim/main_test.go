package socketshim

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/provider"
	"github.com/netprov/netprov/socketshim/seccomp"
)

// The shim tests re-execute the test binary. testRoleEnv selects what the
// child does: "stage" installs Filter() and executes the binary again as
// "target" (served by the test's Server); "oracle" runs the same scenario
// natively in a fresh network namespace; "child" is a helper process a
// scenario starts (inheriting the filter).
const (
	testRoleEnv     = "NETPROV_SHIM_TEST_ROLE"
	testScenarioEnv = "NETPROV_SHIM_TEST_SCENARIO"
	testBound       = 20 * time.Second
	// testKillableEnv makes the stage install the filter with killable
	// waits (seccomp.InstallWaitKillableRecv), as `netprov run` does.
	testKillableEnv = "NETPROV_SHIM_TEST_KILLABLE"
)

func TestMain(m *testing.M) {
	switch os.Getenv(testRoleEnv) {
	case "stage":
		runStage()
	case "target":
		os.Exit(runScenario(os.Getenv(testScenarioEnv)))
	case "oracle":
		if err := loopbackUp(); err != nil {
			fmt.Fprintln(os.Stderr, "oracle:", err)
			os.Exit(2)
		}
		os.Exit(runScenario(os.Getenv(testScenarioEnv)))
	case "child":
		os.Exit(runChild(os.Getenv(testScenarioEnv)))
	case "ifprobe":
		os.Exit(probeIfreqIoctls()) // netadmin_test.go
	}
	os.Exit(m.Run())
}

func runStage() {
	prog, err := Filter().Build()
	if err != nil {
		fmt.Fprintln(os.Stderr, "stage:", err)
		os.Exit(2)
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "stage:", err)
		os.Exit(2)
	}
	env := append(withoutEnv(os.Environ(), testRoleEnv), testRoleEnv+"=target")
	var flags seccomp.InstallFlags
	if os.Getenv(testKillableEnv) != "" {
		flags |= seccomp.InstallWaitKillableRecv
	}
	err = seccomp.RunStage(seccomp.StageConfig{Program: prog, Flags: flags, Path: self, Argv: []string{self}, Env: env})
	fmt.Fprintln(os.Stderr, "stage:", err)
	os.Exit(3)
}

func withoutEnv(env []string, name string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, name+"=") {
			out = append(out, kv)
		}
	}
	return out
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespaces, seccomp listener)")
	}
	if err := seccomp.CheckABI(); err != nil {
		t.Skipf("seccomp user notification unavailable: %v", err)
	}
}

// runResult is a finished scenario: its key=value output and exit status.
type runResult struct {
	out    map[string]string
	order  []string
	stdout string
	stderr string
	err    error
}

func parseOutput(stdout string) (map[string]string, []string) {
	out := map[string]string{}
	var order []string
	sc := bufio.NewScanner(strings.NewReader(stdout))
	for sc.Scan() {
		for _, f := range strings.Fields(sc.Text()) {
			if k, v, ok := strings.Cut(f, "="); ok {
				if _, dup := out[k]; !dup {
					order = append(order, k)
				}
				out[k] = v
			}
		}
	}
	return out, order
}

// runShimmed runs scenario under the filter, served by a Server over a
// kernel provider in a private namespace.
func runShimmed(t *testing.T, scenario string) (runResult, *Server) {
	t.Helper()
	p, err := newKernelProvider()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	return runShimmedOn(t, scenario, p)
}

// runShimmedOn runs scenario under the filter in its own network namespace
// (like the oracle's: interface ioctls must show it), served by a Server
// over p.
func runShimmedOn(t *testing.T, scenario string, p provider.Provider) (runResult, *Server) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testBound)
	defer cancel()
	self, _ := os.Executable()
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), testRoleEnv+"=stage", testScenarioEnv+"="+scenario)
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWNET}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	sc, err := seccomp.StartStage(cmd)
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	l, err := sc.ReceiveListener(ctx)
	if err != nil {
		cmd.Process.Kill()
		<-exited
		t.Fatalf("ReceiveListener: %v (stderr %s)", err, stderr.String())
	}
	defer l.Close()
	srv := NewServer(l, p, Config{SweepInterval: 100 * time.Millisecond})
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx) }()
	if err := sc.Release(ctx); err != nil {
		cmd.Process.Kill()
		<-exited
		t.Fatalf("Release: %v (stderr %s)", err, stderr.String())
	}
	var werr error
	select {
	case werr = <-exited:
	case <-ctx.Done():
		cmd.Process.Kill()
		werr = <-exited
		t.Errorf("scenario %s did not finish in %v; stdout %s stderr %s", scenario, testBound, stdout.String(), stderr.String())
	}
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(testBound):
		t.Errorf("Serve did not return after the target exited")
	}
	out, order := parseOutput(stdout.String())
	return runResult{out: out, order: order, stdout: stdout.String(), stderr: stderr.String(), err: werr}, srv
}

// runOracle runs scenario natively in a fresh network namespace.
func runOracle(t *testing.T, scenario string) runResult {
	t.Helper()
	self, _ := os.Executable()
	ctx, cancel := context.WithTimeout(context.Background(), testBound)
	defer cancel()
	cmd := exec.CommandContext(ctx, self)
	cmd.Env = append(os.Environ(), testRoleEnv+"=oracle", testScenarioEnv+"="+scenario)
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWNET}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	out, order := parseOutput(stdout.String())
	return runResult{out: out, order: order, stdout: stdout.String(), stderr: stderr.String(), err: err}
}

// compareWithOracle runs scenario natively and under the shim and asserts
// that every line printed is the same.
func compareWithOracle(t *testing.T, scenario string) runResult {
	t.Helper()
	requireRoot(t)
	want := runOracle(t, scenario)
	if want.err != nil || len(want.out) == 0 {
		t.Fatalf("oracle run of %s: %v\nstdout %s\nstderr %s", scenario, want.err, want.stdout, want.stderr)
	}
	got, srv := runShimmed(t, scenario)
	if srv.table.served() == 0 {
		t.Errorf("%s: the Server served no socket", scenario)
	}
	if got.err != nil {
		t.Errorf("shimmed run of %s: %v\nstderr %s", scenario, got.err, got.stderr)
	}
	for _, k := range want.order {
		if got.out[k] != want.out[k] {
			t.Errorf("%s: %s = %q under the shim, %q on Linux", scenario, k, got.out[k], want.out[k])
		}
	}
	for _, k := range got.order {
		if _, ok := want.out[k]; !ok {
			t.Errorf("%s: extra output under the shim: %s=%s", scenario, k, got.out[k])
		}
	}
	if t.Failed() {
		t.Logf("oracle stdout:\n%s\nshim stdout:\n%s\nshim stderr:\n%s", want.stdout, got.stdout, got.stderr)
	}
	return got
}
