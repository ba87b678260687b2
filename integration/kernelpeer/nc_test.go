package kernelpeer

import (
	"bytes"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestKernelNcToStack sends a line with the kernel's nc to a stack
// listener, which answers after reading to EOF: nc's half-close (-N) and
// the stack's reply both arrive.
func TestKernelNcToStack(t *testing.T) {
	forEachPeer(t, func(t *testing.T, p *peer, fam family) {
		ln, err := p.node.Listen("tcp", hostPort(fam.stack, 9000))
		if err != nil {
			t.Fatalf("stack listen: %v", err)
		}
		defer ln.Close()
		type result struct {
			got []byte
			err error
		}
		done := make(chan result, 1)
		go func() {
			c, err := ln.Accept()
			if err != nil {
				done <- result{err: err}
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(20 * time.Second))
			got, err := io.ReadAll(c)
			if err == nil {
				_, err = c.Write(append([]byte("stack got: "), got...))
			}
			done <- result{got, err}
		}()

		msg := "hello from kernel nc over " + fam.name + "\n"
		cmd := p.kernel.Command("timeout", "20", "nc", "-N", fam.stack.String(), "9000")
		cmd.Stdin = strings.NewReader(msg)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		p.kernel.StartCmd(t, cmd)
		waitErr := cmd.Wait()
		r := <-done
		if r.err != nil {
			t.Fatalf("stack server: %v", r.err)
		}
		if string(r.got) != msg {
			t.Errorf("stack received %q, want %q", r.got, msg)
		}
		if waitErr != nil {
			t.Fatalf("nc: %v\n%s", waitErr, out.String())
		}
		if want := "stack got: " + msg; out.String() != want {
			t.Errorf("nc printed %q, want %q", out.String(), want)
		}
	})
}

// TestStackDialsKernelNc connects from the stack to the kernel's `nc -l`,
// sends a line, half-closes, and reads nc's stdin to EOF.
func TestStackDialsKernelNc(t *testing.T) {
	forEachPeer(t, func(t *testing.T, p *peer, fam family) {
		const port = 9001
		reply := "hello from kernel nc -l\n"
		cmd := p.kernel.Command("timeout", "20", "nc", "-N", "-l", fam.kernel.String(), strconv.Itoa(port))
		cmd.Stdin = strings.NewReader(reply)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		p.kernel.StartCmd(t, cmd) // killed at cleanup if the test stops early
		waitListening(t, p, port)

		c, err := p.node.Dial("tcp", hostPort(fam.kernel, port))
		if err != nil {
			t.Fatalf("stack dial: %v", err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(20 * time.Second))
		msg := "hello from the stack over " + fam.name + "\n"
		if _, err := io.WriteString(c, msg); err != nil {
			t.Fatalf("write: %v", err)
		}
		if err := c.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
			t.Fatalf("CloseWrite: %v", err)
		}
		got, err := io.ReadAll(c)
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		if string(got) != reply {
			t.Errorf("stack read %q, want %q", got, reply)
		}
		if err := cmd.Wait(); err != nil {
			t.Fatalf("nc -l: %v\n%s", err, out.String())
		}
		if out.String() != msg {
			t.Errorf("nc -l printed %q, want %q", out.String(), msg)
		}
	})
}
