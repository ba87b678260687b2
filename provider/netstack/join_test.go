package netstack

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// strangerEnv names the joiner a TestJoinStrangerHelper process fills.
const strangerEnv = "NETPROV_JOIN_STRANGER"

// TestJoinWithJoinerQueueFull: another process of the provider's network
// namespace (the joiner's abstract name is in /proc/net/unix) fills the
// joiner's accept queue between its listen and the target end's connect.
// join must not wait for room forever (only its own accept would make
// some): it drains the strangers, keeps only its own connection (the
// SO_PEERCRED check) and returns with a working conduit.
func TestJoinWithJoinerQueueFull(t *testing.T) {
	c, err := newStreamConduit(streamConduitBuf)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	var stdin io.WriteCloser
	var child *exec.Cmd
	t.Cleanup(func() {
		if stdin != nil {
			stdin.Close()
		}
		if child != nil {
			_ = child.Wait()
		}
	})
	filled := make(chan string, 1)
	c.afterListen = func(l int) {
		sa, err := unix.Getsockname(l)
		if err != nil {
			filled <- fmt.Sprintf("getsockname: %v", err)
			return
		}
		name := sa.(*unix.SockaddrUnix).Name // "@..." for an abstract name
		child = exec.Command(os.Args[0], "-test.run=^TestJoinStrangerHelper$")
		child.Env = append(os.Environ(), strangerEnv+"="+name)
		child.Stderr = os.Stderr
		if stdin, err = child.StdinPipe(); err != nil {
			filled <- err.Error()
			return
		}
		out, err := child.StdoutPipe()
		if err != nil {
			filled <- err.Error()
			return
		}
		if err := child.Start(); err != nil {
			filled <- err.Error()
			return
		}
		// The helper answers once its connects find the queue full.
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if line := sc.Text(); strings.HasPrefix(line, "filled ") || strings.HasPrefix(line, "error ") {
				filled <- line
				return
			}
		}
		filled <- "helper ended without an answer"
	}
	joined := make(chan error, 1)
	go func() { joined <- c.join(streamConduitBuf) }()
	select {
	case err = <-joined:
	case <-time.After(3 * joinTimeout):
		t.Fatal("join still waits with the joiner's queue full of strangers' connections")
	}
	select {
	case line := <-filled:
		if !strings.HasSuffix(line, " full") {
			t.Fatalf("stranger process: %q, want the joiner's queue filled", line)
		}
	default:
		t.Fatalf("join returned (%v) without listening", err)
	}
	if err != nil {
		t.Fatalf("join with a full queue: %v", err)
	}
	// The conduit joins the target end and ours, not a stranger.
	msg := []byte("through the conduit")
	if _, err := c.target.Write(msg); err != nil {
		t.Fatal(err)
	}
	if err := c.ours.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c.ours, got); err != nil || string(got) != string(msg) {
		t.Fatalf("read from our end = %q, %v; want %q", got, err, msg)
	}
}

// TestJoinStrangerHelper is not a test: TestJoinWithJoinerQueueFull runs
// it in a child process (SO_PEERCRED must show another pid). It connects
// to the joiner named in strangerEnv until the queue is full, reports,
// and keeps its connections until its stdin closes.
func TestJoinStrangerHelper(t *testing.T) {
	name := os.Getenv(strangerEnv)
	if name == "" {
		t.Skip("helper process of TestJoinWithJoinerQueueFull")
	}
	n := 0
	full := false
	for i := 0; i < 1<<16 && !full; i++ {
		fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			fmt.Printf("error socket: %v\n", err)
			os.Exit(1)
		}
		switch err := unix.Connect(fd, &unix.SockaddrUnix{Name: name}); err {
		case nil:
			n++
		case unix.EAGAIN:
			unix.Close(fd)
			full = true
		default:
			fmt.Printf("error connect: %v\n", err)
			os.Exit(1)
		}
	}
	if full {
		fmt.Printf("filled %d full\n", n)
	} else {
		fmt.Printf("filled %d\n", n)
	}
	_, _ = io.Copy(io.Discard, os.Stdin)
	os.Exit(0)
}
