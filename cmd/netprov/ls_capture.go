package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/netprov/netprov/cni/control"
)

// runCapture streams a sandbox's link as pcap (control.OpCapture) into
// the -w file until --duration passes or the user interrupts.
func runCapture(ctx context.Context, args []string) error {
	var stateDir string
	fs := newSandboxFlags("capture", &stateDir)
	out := fs.String("w", "", "pcap file to write (- = stdout)")
	dur := fs.Duration("duration", 0, "stop after this long (default: until interrupted)")
	if err := fs.Parse(reorderFlags(args)); err != nil || fs.NArg() != 1 || *out == "" {
		return usageError{"capture: usage: netprov capture [--state-dir DIR] [--duration D] ID -w FILE.pcap"}
	}
	dir, err := resolveSandbox(stateDir, fs.Arg(0))
	if err != nil {
		return fmt.Errorf("capture: %w", err)
	}
	if *dur > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *dur)
		defer cancel()
	}
	var w io.Writer = os.Stdout
	if *out != "-" {
		f, err := os.Create(*out)
		if err != nil {
			return fmt.Errorf("capture: %w", err)
		}
		defer f.Close()
		w = f
	}
	n, err := capture(ctx, filepath.Join(dir, control.SocketFile), w)
	if *out != "-" {
		fmt.Fprintf(os.Stderr, "capture: wrote %d bytes to %s\n", n, *out)
	}
	return err
}

// capture streams the pcap from the control socket at path into w until
// ctx ends (which is the normal end: nil) or the stack process stops.
func capture(ctx context.Context, path string, w io.Writer) (int64, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return 0, fmt.Errorf("capture: %w", err)
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	line, _ := json.Marshal(control.Request{Op: control.OpCapture})
	if _, err := c.Write(append(line, '\n')); err != nil {
		return 0, fmt.Errorf("capture: send request: %w", err)
	}
	r := bufio.NewReader(c)
	ans, err := r.ReadBytes('\n')
	if err != nil {
		return 0, fmt.Errorf("capture: no answer from %s: %w", path, err)
	}
	var resp control.Response
	if err := json.Unmarshal(ans, &resp); err != nil {
		return 0, fmt.Errorf("capture: bad answer: %w", err)
	}
	if !resp.OK {
		return 0, fmt.Errorf("capture: stack process refused: %s", resp.Error)
	}
	n, err := io.Copy(w, r)
	if ctx.Err() != nil && (err == nil || errors.Is(err, os.ErrDeadlineExceeded)) {
		return n, nil
	}
	if err != nil {
		return n, fmt.Errorf("capture: %w", err)
	}
	return n, nil // the stack process ended the stream
}
