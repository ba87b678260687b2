package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

const (
	bulkToStackPort  = 5001
	bulkToKernelPort = 5002
	bulkTimeout      = 120 * time.Second
)

// pySource connects to argv[1]:argv[2], sends argv[3] random bytes,
// half-closes, waits for EOF and prints the SHA-256 of what it sent.
const pySource = `
import hashlib, os, socket, sys
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = socket.create_connection((host, port), timeout=60)
h = hashlib.sha256()
while n:
    b = os.urandom(min(n, 1 << 20))
    s.sendall(b)
    h.update(b)
    n -= len(b)
s.shutdown(socket.SHUT_WR)
while s.recv(65536):
    pass
print(h.hexdigest(), flush=True)
`

// pySink listens on argv[1]:argv[2], prints "listening", reads one
// connection to EOF and prints the SHA-256 of what it received.
const pySink = `
import hashlib, socket, sys
host, port = sys.argv[1], int(sys.argv[2])
l = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind((host, port))
l.listen(1)
print("listening", flush=True)
c, _ = l.accept()
c.settimeout(60)
h = hashlib.sha256()
while True:
    b = c.recv(1 << 20)
    if not b:
        break
    h.update(b)
print(h.hexdigest(), flush=True)
`

// bulk moves d.bulkSize bytes each way and prints the rates.
func (d *demo) bulk(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*bulkTimeout)
	defer cancel()
	if err := d.bulkToStack(ctx); err != nil {
		return fmt.Errorf("kernel -> stack: %w", err)
	}
	if err := d.bulkToKernel(ctx); err != nil {
		return fmt.Errorf("stack -> kernel: %w", err)
	}
	return nil
}

func (d *demo) bulkToStack(ctx context.Context) error {
	ln, err := d.topo.node.Listen("tcp", netip.AddrPortFrom(demoStackV4.Addr(), bulkToStackPort).String())
	if err != nil {
		return err
	}
	defer ln.Close()
	type result struct {
		sum     string
		n       int64
		elapsed time.Duration
		err     error
	}
	done := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- result{err: err}
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(bulkTimeout))
		start := time.Now()
		h := sha256.New()
		n, err := io.Copy(h, c)
		done <- result{hex.EncodeToString(h.Sum(nil)), n, time.Since(start), err}
	}()
	cmd := d.topo.kernelCommand("timeout", strconv.Itoa(int(bulkTimeout/time.Second)), "python3", "-c", pySource,
		demoStackV4.Addr().String(), strconv.Itoa(bulkToStackPort), strconv.Itoa(d.bulkSize))
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := d.topo.start(cmd); err != nil {
		return err
	}
	var r result
	select {
	case r = <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("kernel sender: %w: %s", err, strings.TrimSpace(out.String()))
	}
	if r.err != nil {
		return fmt.Errorf("stack receiver after %d bytes: %w", r.n, r.err)
	}
	if got := strings.TrimSpace(out.String()); got != r.sum || r.n != int64(d.bulkSize) {
		return fmt.Errorf("data damaged: kernel sent %d bytes with SHA-256 %s, stack received %d bytes with %s", d.bulkSize, got, r.n, r.sum)
	}
	fmt.Fprintf(d.out, "   kernel -> stack: %s in %v = %s, SHA-256 %s… identical on both sides\n",
		mib(d.bulkSize), r.elapsed.Round(time.Millisecond), rate(d.bulkSize, r.elapsed), r.sum[:16])
	return nil
}

func (d *demo) bulkToKernel(ctx context.Context) error {
	cmd := d.topo.kernelCommand("timeout", strconv.Itoa(int(bulkTimeout/time.Second)), "python3", "-c", pySink,
		demoKernelV4.Addr().String(), strconv.Itoa(bulkToKernelPort))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := d.topo.start(cmd); err != nil {
		return err
	}
	lines := bufio.NewScanner(stdout)
	if !lines.Scan() || lines.Text() != "listening" {
		cmd.Wait()
		return fmt.Errorf("kernel receiver did not start: %s", strings.TrimSpace(stderr.String()))
	}
	c, err := d.topo.node.DialContext(ctx, "tcp", netip.AddrPortFrom(demoKernelV4.Addr(), bulkToKernelPort).String())
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(bulkTimeout))
	start := time.Now()
	h := sha256.New()
	if err := sendRandom(c, h, d.bulkSize); err != nil {
		return err
	}
	if err := c.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if !lines.Scan() {
		cmd.Wait()
		return fmt.Errorf("kernel receiver printed no digest: %s", strings.TrimSpace(stderr.String()))
	}
	elapsed := time.Since(start)
	got := lines.Text()
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("kernel receiver: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if got != sum {
		return fmt.Errorf("data damaged: stack sent SHA-256 %s, kernel received %s", sum, got)
	}
	fmt.Fprintf(d.out, "   stack -> kernel: %s in %v = %s, SHA-256 %s… identical on both sides\n",
		mib(d.bulkSize), elapsed.Round(time.Millisecond), rate(d.bulkSize, elapsed), sum[:16])
	return nil
}

// sendRandom writes n random bytes to c, hashing them into h.
func sendRandom(c net.Conn, h hash.Hash, n int) error {
	buf := make([]byte, 256<<10)
	for left := n; left > 0; {
		chunk := buf[:min(left, len(buf))]
		if _, err := rand.Read(chunk); err != nil {
			return err
		}
		h.Write(chunk)
		if _, err := c.Write(chunk); err != nil {
			return fmt.Errorf("write after %d bytes: %w", n-left, err)
		}
		left -= len(chunk)
	}
	return nil
}

func mib(n int) string { return fmt.Sprintf("%d MiB", n>>20) }

func rate(n int, d time.Duration) string {
	return fmt.Sprintf("%.0f Mbit/s", float64(n)*8/d.Seconds()/1e6)
}
