package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
)

func TestDispatchUnknownCommandIsUsageError(t *testing.T) {
	for _, args := range [][]string{nil, {"no-such-command"}} {
		err := dispatch(context.Background(), args)
		if !errors.As(err, new(usageError)) {
			t.Errorf("dispatch(%q) = %v, want a usageError (exit status 2)", args, err)
		}
	}
}

func TestCommandsUniqueAndDescribed(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range commands() {
		if c.name == "" || c.summary == "" || c.run == nil {
			t.Errorf("command %+v: name, summary and run are required", c)
		}
		if seen[c.name] {
			t.Errorf("command %q listed twice", c.name)
		}
		seen[c.name] = true
	}
	for _, want := range []string{"demo", "help", "version"} {
		if !seen[want] {
			t.Errorf("command %q missing", want)
		}
	}
	var b bytes.Buffer
	printUsage(&b)
	for name := range seen {
		if !strings.Contains(b.String(), "  "+name+" ") {
			t.Errorf("usage does not list %q:\n%s", name, b.String())
		}
	}
}

func TestVersionNamesGoAndPlatform(t *testing.T) {
	v := version()
	if !strings.HasPrefix(v, "netprov ") || !strings.Contains(v, "go1.") {
		t.Errorf("version() = %q, want \"netprov VERSION goX.Y OS/ARCH\"", v)
	}
}

func TestDemoRejectsBadArguments(t *testing.T) {
	for _, args := range [][]string{{"extra"}, {"-bulk", "0"}, {"-nosuchflag"}} {
		err := demoMain(context.Background(), args, &bytes.Buffer{}, "")
		if !errors.As(err, new(usageError)) {
			t.Errorf("demo %q = %v, want a usageError", args, err)
		}
	}
}

func TestDemoNeedsRoot(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("runs as root: the not-root refusal cannot be observed")
	}
	err := demoMain(context.Background(), nil, &bytes.Buffer{}, "")
	if err == nil || !strings.Contains(err.Error(), "needs root") {
		t.Fatalf("demo as non-root = %v, want a clear needs-root error", err)
	}
}

// TestDemoEndToEnd runs the whole demo with a small bulk transfer and
// checks that each step printed its evidence and that the namespaces are
// gone afterwards.
func TestDemoEndToEnd(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("demo needs root (network namespaces, AF_PACKET): run the tests as root")
	}
	for _, tool := range demoTools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("demo needs %s (scripts/setup installs it)", tool)
		}
	}
	var out bytes.Buffer
	if err := demoMain(context.Background(), []string{"-bulk", "4"}, &out, buildNetprov(t)); err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	text := out.String()
	for _, want := range []string{
		"Hello from netprov's userspace TCP/IP stack!",
		"You (10.213.99.1:",
		"You ([fd00:213:99::1]:",
		"GET http://10.213.99.1:8000/ -> 200 OK",
		"GET http://[fd00:213:99::1]:8000/ -> 200 OK",
		"Hello from the Linux kernel's TCP/IP stack",
		"3 packets transmitted, 3 received",
		"kernel -> stack: 4 MiB",
		"stack -> kernel: 4 MiB",
		"identical on both sides",
		"ESTAB",
		"LISTEN",
		"ActiveOpens",
		"curl runs in its own network namespace with only lo",
		"demo complete",
		"teardown",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("demo output:\n%s", text)
	}
	list, err := exec.Command("ip", "netns", "list").CombinedOutput()
	if err != nil {
		t.Fatalf("ip netns list: %v", err)
	}
	for _, line := range strings.Split(string(list), "\n") {
		for _, name := range []string{"npdk", "npds"} {
			if strings.HasPrefix(line, name) && strings.Contains(text, strings.Fields(line)[0]) {
				t.Errorf("namespace %s left behind", strings.Fields(line)[0])
			}
		}
	}
}
