// Command netprov is netprov's single binary. Each mode is a subcommand;
// `netprov help` lists them.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

// command is one subcommand. run gets the arguments after the command's
// name; its context is cancelled on SIGINT and SIGTERM.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string) error
}

// commands lists the subcommands in the order help shows them. Adding a
// subcommand is one line here.
func commands() []command {
	return []command{
		{"run", "run a command with its sockets served by a userspace stack: run [flags] -- CMD [ARGS...] (root)", runRun},
		{"stack", "the per-sandbox stack process the CNI plugin starts: stack STATEDIR (root)", runStack},
		{"demo", "show the userspace stack talking to the Linux kernel in throwaway namespaces (root)", runDemo},
		{"agent", "OCI seccomp agent: route containers' seccomp fds to their sandboxes: agent [--socket PATH] (root)", runAgent},
		{"install", "install the CNI plugin, a conflist and the seccomp profile: install [flags] | install --uninstall", runInstall},
		{"ls", "list the sandboxes (container id, pid, addresses, connections): ls [--state-dir DIR]", runLs},
		{"ss", "list a sandbox's connections like ss -tan: ss [--state-dir DIR] ID", runSs},
		{"capture", "write a sandbox's link frames as pcap: capture [--state-dir DIR] ID -w FILE.pcap", runCapture},
		{"version", "print the version", runVersion},
		{"help", "list the commands", runHelp},
	}
}

// usageError marks a bad command line: exit status 2, as flag does.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func main() {
	if isCNI() {
		runCNI() // CNI mode: CNI_COMMAND is set
		return
	}
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: logLevel()})))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := dispatch(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "netprov: %v\n", err)
		if errors.As(err, new(usageError)) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// dispatch runs the subcommand named by args[0].
func dispatch(ctx context.Context, args []string) error {
	if len(args) == 0 {
		printUsage(os.Stderr)
		return usageError{"no command given"}
	}
	name := args[0]
	if name == "-h" || name == "--help" {
		name = "help"
	}
	for _, c := range commands() {
		if c.name == name {
			return c.run(ctx, args[1:])
		}
	}
	printUsage(os.Stderr)
	return usageError{fmt.Sprintf("unknown command %q", args[0])}
}

func runHelp(context.Context, []string) error {
	printUsage(os.Stdout)
	return nil
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "usage: netprov COMMAND [ARGS...]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "commands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Diagnostics go to stderr; NETPROV_LOG=debug shows more.")
}

// logLevel reads NETPROV_LOG (debug, info, warn, error; default warn).
func logLevel() slog.Level {
	var l slog.Level = slog.LevelWarn
	if s := os.Getenv("NETPROV_LOG"); s != "" {
		if err := l.UnmarshalText([]byte(s)); err != nil {
			l = slog.LevelWarn
		}
	}
	return l
}
