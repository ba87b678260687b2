package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"

	"github.com/netprov/netprov/cni/agent"
)

// runAgent is `netprov agent`: the OCI seccomp agent behind the profile's
// listenerPath (see package agent). CNI ADD starts it when it is not
// running (agent.EnsureRunning).
func runAgent(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	socket := fs.String("socket", agent.DefaultSocket, "socket named by the seccomp profile's listenerPath")
	stateDir := fs.String("state-dir", "", "sandbox state directory (default /run/netprov)")
	unmatched := fs.String("unmatched", agent.UnmatchedPassthrough, "containers without a sandbox: passthrough (kernel serves them) or close (ENOSYS)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Println("usage: netprov agent [--socket PATH] [--state-dir DIR] [--unmatched passthrough|close]")
		}
		return usageError{fmt.Sprintf("agent: %v", err)}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("agent: unexpected argument %q", fs.Arg(0))}
	}
	a, err := agent.New(agent.Config{StateDir: *stateDir, Unmatched: *unmatched})
	if err != nil {
		return usageError{err.Error()}
	}
	release, err := agent.Lock(*socket)
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	defer release()
	ln, err := agent.Listen(*socket)
	if err != nil {
		return err
	}
	slog.Info("agent: listening", "socket", *socket)
	return a.Serve(ctx, ln)
}
