package cni

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"testing"
	"time"

	"github.com/netprov/netprov/cni/stackd"
	"github.com/netprov/netprov/socketshim"
	"github.com/netprov/netprov/socketshim/seccomp"

	"log/slog"
)

// The test binary plays every process of the plugin's life: the CNI plugin
// itself (CNI_COMMAND set, linked into the plugin directory as "netprov"),
// the stack process (`<binary> stack DIR`, what startStack runs), the stage
// of the end-to-end test and its target (an HTTP client).
const (
	envStage = "NETPROV_CNI_TEST_STAGE" // run seccomp.RunStage
	envFetch = "NETPROV_CNI_TEST_FETCH" // fetch this URL, print the body
)

func TestMain(m *testing.M) {
	switch {
	case os.Getenv("CNI_COMMAND") != "":
		Main("netprov CNI plugin (test binary)")
		os.Exit(0)
	case len(os.Args) == 3 && os.Args[1] == StackCommand:
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
		log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
		err := stackd.Run(ctx, os.Args[2], log)
		stop()
		if err != nil {
			fmt.Fprintln(os.Stderr, "stack:", err)
			os.Exit(1)
		}
		os.Exit(0)
	case os.Getenv(envStage) != "" && seccomp.IsStage():
		prog, err := socketshim.Filter().Build()
		if err == nil {
			env := []string{envFetch + "=" + os.Getenv(envFetch)}
			err = seccomp.RunStage(seccomp.StageConfig{Program: prog, Argv: []string{os.Args[0]}, Env: env})
		}
		fmt.Fprintln(os.Stderr, "stage:", err)
		os.Exit(1)
	case os.Getenv(envFetch) != "":
		os.Exit(fetch(os.Getenv(envFetch)))
	}
	os.Exit(m.Run())
}

// fetch is the sandboxed program of the end-to-end test.
func fetch(url string) int {
	c := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	resp, err := c.Get(url)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fetch:", err)
		return 1
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fetch body:", err)
		return 1
	}
	os.Stdout.Write(b)
	return 0
}
