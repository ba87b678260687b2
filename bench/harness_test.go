package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"
)

// benchPort is the port the server stack listens on.
const benchPort = 5201

// setupTimeout bounds connection setup and the final drain of a benchmark,
// so a stack that loses a packet for good fails the benchmark instead of
// hanging it.
const setupTimeout = 30 * time.Second

// newNetwork builds impl's network and closes it when the test or benchmark
// ends.
func newNetwork(tb testing.TB, impl Implementation, cfg Config) Network {
	tb.Helper()
	n, err := impl.New(cfg)
	if errors.Is(err, errNotReady) {
		tb.Skipf("%s: %v", impl.Name, err)
	}
	if err != nil {
		tb.Fatalf("%s: new network: %v", impl.Name, err)
	}
	tb.Cleanup(func() {
		if err := n.Close(); err != nil {
			tb.Errorf("%s: close network: %v", impl.Name, err)
		}
	})
	return n
}

// connectPair opens one connection through n and returns both ends.
func connectPair(tb testing.TB, n Network) (client, server net.Conn) {
	tb.Helper()
	addr := netip.AddrPortFrom(n.ServerAddr(), benchPort)
	l, err := n.Listen(addr)
	if err != nil {
		tb.Fatalf("listen: %v", err)
	}
	defer l.Close()
	type accepted struct {
		c   net.Conn
		err error
	}
	acceptc := make(chan accepted, 1)
	go func() {
		c, err := l.Accept()
		acceptc <- accepted{c, err}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	client, err = n.Dial(ctx, addr)
	if err != nil {
		tb.Fatalf("dial: %v", err)
	}
	select {
	case a := <-acceptc:
		if a.err != nil {
			client.Close()
			tb.Fatalf("accept: %v", a.err)
		}
		server = a.c
	case <-ctx.Done():
		client.Close()
		tb.Fatalf("accept: no connection within %v", setupTimeout)
	}
	tb.Cleanup(func() {
		client.Close()
		server.Close()
	})
	return client, server
}

// sink reads from c until it has read 'want' bytes in total, then reports
// on done. It is the receiving application of the bulk benchmark.
type sink struct {
	c    net.Conn
	buf  []byte
	done chan error
}

func newSink(c net.Conn, bufSize int) *sink {
	return &sink{c: c, buf: make([]byte, bufSize), done: make(chan error, 1)}
}

// drain starts reading 'want' bytes in the background.
func (s *sink) drain(want int64) {
	go func() {
		var got int64
		for got < want {
			n, err := s.c.Read(s.buf)
			got += int64(n)
			if err != nil {
				s.done <- fmt.Errorf("read after %d of %d bytes: %w", got, want, err)
				return
			}
		}
		s.done <- nil
	}()
}

// wait waits for the current drain to finish.
func (s *sink) wait(tb testing.TB) {
	tb.Helper()
	select {
	case err := <-s.done:
		if err != nil {
			tb.Fatal(err)
		}
	case <-time.After(setupTimeout):
		tb.Fatalf("receiver stalled for %v", setupTimeout)
	}
}

// writeAll writes p to c in chunks of chunk bytes.
func writeAll(c net.Conn, p []byte, chunk int) error {
	for len(p) > 0 {
		n := min(chunk, len(p))
		if _, err := c.Write(p[:n]); err != nil {
			return err
		}
		p = p[n:]
	}
	return nil
}

// readEOF reads c until EOF, failing if data arrives.
func readEOF(c net.Conn) error {
	var b [1]byte
	n, err := c.Read(b[:])
	if n != 0 {
		return fmt.Errorf("unexpected %d bytes before EOF", n)
	}
	if errors.Is(err, io.EOF) {
		return nil
	}
	if err == nil {
		return errors.New("read returned 0 bytes without EOF")
	}
	return err
}
