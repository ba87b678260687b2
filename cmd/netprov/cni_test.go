package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestStackNeedsOneStateDir(t *testing.T) {
	for _, args := range [][]string{nil, {"a", "b"}} {
		if err := runStack(context.Background(), args); !errors.As(err, new(usageError)) {
			t.Errorf("stack %q = %v, want a usageError", args, err)
		}
	}
	err := runStack(context.Background(), []string{filepath.Join(t.TempDir(), "missing")})
	if err == nil || !strings.Contains(err.Error(), "config.json") {
		t.Errorf("stack with a missing state dir = %v, want an error naming config.json", err)
	}
}

// TestBinaryIsCNIPlugin builds netprov and runs it the way a runtime does
// (CNI_COMMAND=VERSION): CNI mode comes before subcommand dispatch.
func TestBinaryIsCNIPlugin(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "netprov")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "CNI_COMMAND=VERSION")
	cmd.Stdin = strings.NewReader(`{"cniVersion":"1.1.0"}`)
	var out bytes.Buffer
	cmd.Stdout = &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("VERSION: %v", err)
	}
	var v struct {
		SupportedVersions []string `json:"supportedVersions"`
	}
	if err := json.Unmarshal(out.Bytes(), &v); err != nil {
		t.Fatalf("VERSION output %q: %v", out.String(), err)
	}
	for _, want := range []string{"0.4.0", "1.0.0", "1.1.0"} {
		if !slices.Contains(v.SupportedVersions, want) {
			t.Errorf("supportedVersions %v lacks %s", v.SupportedVersions, want)
		}
	}
}
