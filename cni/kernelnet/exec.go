package kernelnet

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// ResolveNetns turns --netns's PATH|NAME into a namespace file: a name
// without a slash is an `ip netns` name under /run/netns.
func ResolveNetns(s string) string {
	if s == "" || strings.ContainsRune(s, '/') {
		return s
	}
	return filepath.Join("/run/netns", s)
}

// command runs name with args in network namespace ns ("" = ours) and
// returns its standard output.
func command(ctx context.Context, ns, name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if ns != "" {
		args = append([]string{"--net=" + ns, "--", name}, args...)
		name = "nsenter"
	}
	cmd := exec.CommandContext(ctx, name, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}
