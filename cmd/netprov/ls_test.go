package main

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/netprov/netprov/cni/control"
)

// lsStack answers the control ops ls and ss use, from fixed rows.
type lsStack struct{ conns []control.Connection }

func (s lsStack) Status() control.Status             { return control.Status{Version: control.Version} }
func (s lsStack) Connections() []control.Connection  { return s.conns }
func (s lsStack) Handoff(control.Request, int) error { return nil }

func TestLsAndSsThroughControlSocket(t *testing.T) {
	stateDir := t.TempDir()
	live := "aaaa1111bbbb2222cccc"
	dir := control.SandboxDir(stateDir, live)
	os.MkdirAll(dir, 0o755)
	addr := netip.MustParsePrefix("10.213.9.5/24")
	control.WriteSandboxConfig(dir, &control.SandboxConfig{ContainerID: live, Network: "nptest", Addresses: []netip.Prefix{addr}})
	os.WriteFile(filepath.Join(dir, control.PIDFile), []byte(itoaPID(os.Getpid())+"\n"), 0o644)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: filepath.Join(dir, control.SocketFile), Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	conns := []control.Connection{
		{Protocol: "tcp", State: "LISTEN", Local: netip.MustParseAddrPort("0.0.0.0:80"), Remote: netip.MustParseAddrPort("0.0.0.0:0")},
		{Protocol: "tcp", State: "ESTAB", Local: netip.MustParseAddrPort("10.213.9.5:80"), Remote: netip.MustParseAddrPort("10.213.9.1:40000"), SendQ: 7},
		{Protocol: "tcp", State: "LISTEN", Local: netip.MustParseAddrPort("[::]:8080")},
		{Protocol: "udp", State: "UNCONN", Local: netip.MustParseAddrPort("10.213.9.5:53")},
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); control.Serve(ctx, ln, lsStack{conns}, slog.Default()) }()
	defer func() { cancel(); <-done }()
	// A sandbox whose stack process is gone.
	deadDir := control.SandboxDir(stateDir, "dead0000")
	os.MkdirAll(deadDir, 0o755)
	control.WriteSandboxConfig(deadDir, &control.SandboxConfig{ContainerID: "dead0000", Network: "nptest"})
	os.WriteFile(filepath.Join(deadDir, control.PIDFile), []byte("999999999\n"), 0o644)

	rows, err := listSandboxes(context.Background(), stateDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0].ID != live || !rows[0].Alive || rows[0].Conns != 4 || rows[1].Alive || rows[1].Conns != -1 {
		t.Fatalf("rows = %+v", rows)
	}
	var b bytes.Buffer
	writeSandboxes(&b, rows)
	for _, want := range []string{"aaaa1111bbbb ", "10.213.9.5/24", "running", "dead"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("ls output lacks %q:\n%s", want, b.String())
		}
	}

	// ss by unique prefix; TCP rows only, in ss -tan's notation.
	d, err := resolveSandbox(stateDir, "aaaa")
	if err != nil || d != dir {
		t.Fatalf("resolve prefix: %q, %v", d, err)
	}
	if _, err := resolveSandbox(stateDir, "nope"); err == nil {
		t.Fatal("unknown id resolved")
	}
	got, err := control.GetConnections(context.Background(), filepath.Join(d, control.SocketFile))
	if err != nil {
		t.Fatal(err)
	}
	b.Reset()
	writeConnections(&b, got, false)
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 4 {
		t.Fatalf("ss output:\n%s", b.String())
	}
	for i, want := range [][]string{
		{"State", "Recv-Q", "Send-Q", "Local", "Address:Port", "Peer"},
		{"LISTEN", "0", "0", "0.0.0.0:80", "0.0.0.0:*"},
		{"ESTAB", "0", "7", "10.213.9.5:80", "10.213.9.1:40000"},
		{"LISTEN", "0", "0", "[::]:8080", "*:*"},
	} {
		f := strings.Fields(lines[i])
		for j, w := range want {
			if j >= len(f) || f[j] != w {
				t.Errorf("line %d = %q, want fields %q", i, lines[i], want)
				break
			}
		}
	}
	b.Reset()
	writeConnections(&b, got, true)
	if !strings.Contains(b.String(), "udp") || !strings.HasPrefix(b.String(), "Netid") {
		t.Errorf("ss --all:\n%s", b.String())
	}
}

func itoaPID(p int) string { return strconv.Itoa(p) }
