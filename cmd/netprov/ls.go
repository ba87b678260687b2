package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/cni/control"
)

// sandboxInfo is one row of `netprov ls`.
type sandboxInfo struct {
	ID        string
	Dir       string
	PID       int
	Alive     bool
	Network   string
	Addresses []netip.Prefix
	Conns     int // -1: the stack process did not answer
}

// listSandboxes reads every sandbox under stateDir and asks each live
// stack process for its connections.
func listSandboxes(ctx context.Context, stateDir string) ([]sandboxInfo, error) {
	if stateDir == "" {
		stateDir = control.DefaultStateDir
	}
	ents, err := os.ReadDir(stateDir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	var out []sandboxInfo
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		dir := filepath.Join(stateDir, e.Name())
		cfg, err := control.ReadSandboxConfig(dir)
		if err != nil {
			continue // not a sandbox (or ADD is still writing it)
		}
		si := sandboxInfo{ID: cfg.ContainerID, Dir: dir, Network: cfg.Network, Addresses: cfg.Addresses, Conns: -1}
		if si.ID == "" {
			si.ID = e.Name()
		}
		if b, err := os.ReadFile(filepath.Join(dir, control.PIDFile)); err == nil {
			si.PID, _ = strconv.Atoi(strings.TrimSpace(string(b)))
			si.Alive = si.PID > 0 && unix.Kill(si.PID, 0) == nil
		}
		if si.Alive {
			cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			conns, err := control.GetConnections(cctx, filepath.Join(dir, control.SocketFile))
			cancel()
			if err == nil {
				si.Conns = len(conns)
			}
		}
		out = append(out, si)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func writeSandboxes(w io.Writer, rows []sandboxInfo) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CONTAINER ID\tNETWORK\tPID\tSTATE\tADDRESSES\tCONNECTIONS")
	for _, r := range rows {
		state := "running"
		if !r.Alive {
			state = "dead"
		}
		addrs := make([]string, len(r.Addresses))
		for i, a := range r.Addresses {
			addrs[i] = a.String()
		}
		conns := "-"
		if r.Conns >= 0 {
			conns = strconv.Itoa(r.Conns)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\n", shortID(r.ID), r.Network, r.PID, state, strings.Join(addrs, ","), conns)
	}
	tw.Flush()
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// stateDirFlags parses [--state-dir DIR] plus the command's own flags.
func newSandboxFlags(name string, stateDir *string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(stateDir, "state-dir", control.DefaultStateDir, "sandbox state directory")
	return fs
}

func runLs(ctx context.Context, args []string) error {
	var stateDir string
	fs := newSandboxFlags("ls", &stateDir)
	if err := fs.Parse(args); err != nil {
		return usageError{fmt.Sprintf("ls: %v (usage: netprov ls [--state-dir DIR])", err)}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("ls: unexpected argument %q", fs.Arg(0))}
	}
	rows, err := listSandboxes(ctx, stateDir)
	if err != nil {
		return fmt.Errorf("ls: %w", err)
	}
	writeSandboxes(os.Stdout, rows)
	return nil
}

// resolveSandbox finds the sandbox directory of a full or unique prefix id.
func resolveSandbox(stateDir, id string) (string, error) {
	if id == "" || strings.ContainsAny(id, "/") {
		return "", usageError{fmt.Sprintf("bad container id %q", id)}
	}
	ents, err := os.ReadDir(stateDir)
	if err != nil {
		return "", err
	}
	var found []string
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		if e.Name() == id {
			return filepath.Join(stateDir, id), nil
		}
		if strings.HasPrefix(e.Name(), id) {
			found = append(found, e.Name())
		}
	}
	switch len(found) {
	case 0:
		return "", fmt.Errorf("no sandbox %q in %s", id, stateDir)
	case 1:
		return filepath.Join(stateDir, found[0]), nil
	}
	return "", fmt.Errorf("container id prefix %q is ambiguous (%d sandboxes)", id, len(found))
}

func runSs(ctx context.Context, args []string) error {
	var stateDir string
	fs := newSandboxFlags("ss", &stateDir)
	all := fs.Bool("all", false, "all protocols (a Netid column like ss -tuan), not only TCP")
	args = reorderFlags(args)
	if err := fs.Parse(args); err != nil || fs.NArg() != 1 {
		return usageError{"ss: usage: netprov ss [--state-dir DIR] [--all] ID"}
	}
	dir, err := resolveSandbox(stateDir, fs.Arg(0))
	if err != nil {
		return fmt.Errorf("ss: %w", err)
	}
	conns, err := control.GetConnections(ctx, filepath.Join(dir, control.SocketFile))
	if err != nil {
		return fmt.Errorf("ss: %w", err)
	}
	writeConnections(os.Stdout, conns, *all)
	return nil
}

// writeConnections prints conns in ss -tan's columns (ss -tuan's with all).
func writeConnections(w io.Writer, conns []control.Connection, all bool) {
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
	if all {
		fmt.Fprint(tw, "Netid\t")
	}
	fmt.Fprintln(tw, "State\tRecv-Q\tSend-Q\tLocal Address:Port\tPeer Address:Port")
	for _, c := range conns {
		if !all && c.Protocol != "tcp" {
			continue
		}
		if all {
			fmt.Fprintf(tw, "%s\t", c.Protocol)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\n", c.State, c.RecvQ, c.SendQ, ssAddr(c.Local), ssAddr(c.Remote))
	}
	tw.Flush()
}

// ssAddr formats like ss: port 0 is "*", an invalid address "*".
func ssAddr(ap netip.AddrPort) string {
	if !ap.Addr().IsValid() {
		return "*:*"
	}
	port := "*"
	if ap.Port() != 0 {
		port = strconv.Itoa(int(ap.Port()))
	}
	a := ap.Addr()
	if a.Is6() && !a.Is4In6() {
		return "[" + a.String() + "]:" + port
	}
	return a.Unmap().String() + ":" + port
}

// reorderFlags moves flags in front of positional arguments, so that
// `ss ID --all` works like `ss --all ID` (flag stops at the first
// non-flag).
func reorderFlags(args []string) []string {
	var flags, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			pos = append(pos, args[i+1:]...)
			i = len(args)
		case strings.HasPrefix(a, "-") && len(a) > 1:
			flags = append(flags, a)
			if !strings.Contains(a, "=") && flagTakesValue(a) && i+1 < len(args) {
				flags = append(flags, args[i+1])
				i++
			}
		default:
			pos = append(pos, a)
		}
	}
	return append(flags, pos...)
}

func flagTakesValue(a string) bool {
	switch strings.TrimLeft(a, "-") {
	case "state-dir", "w", "c", "count", "duration":
		return true
	}
	return false
}
