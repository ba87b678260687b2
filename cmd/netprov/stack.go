package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/netprov/netprov/cni/stackd"
)

// runStack is `netprov stack DIR`: the per-sandbox stack process the CNI
// plugin starts (DIR is the sandbox's state directory, with config.json).
// It runs until SIGTERM.
func runStack(ctx context.Context, args []string) error {
	if len(args) != 1 {
		return usageError{"stack: want exactly one argument: the sandbox state directory (/run/netprov/<container id>)"}
	}
	dir, err := filepath.Abs(args[0])
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: stackLogLevel()}))
	return stackd.Run(ctx, dir, log)
}

// stackLogLevel is NETPROV_LOG, default info: the stack log is a file.
func stackLogLevel() slog.Level {
	if os.Getenv("NETPROV_LOG") == "" {
		return slog.LevelInfo
	}
	return logLevel()
}
