package kernelpeer

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	// bulkSize is the byte count each direction carries.
	bulkSize = 256 << 20
	// bulkTimeout bounds one direction of one transfer.
	bulkTimeout = 60 * time.Second
)

// kernelSource connects to argv[1]:argv[2], sends argv[3] bytes (a
// multiple of 1 MiB) of the pattern bulkPattern describes, half-closes,
// waits for the peer's EOF and prints "sha256 bytes".
const kernelSource = `
import hashlib, socket, struct, sys
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
tmpl = b"".join(hashlib.sha256(str(k).encode()).digest() for k in range(32768))
s = socket.create_connection((host, port), timeout=60)
h = hashlib.sha256()
for i in range(n >> 20):
    b = struct.pack("<Q", i) + tmpl[8:]
    s.sendall(b)
    h.update(b)
s.shutdown(socket.SHUT_WR)
while s.recv(65536):
    pass
print(h.hexdigest(), n, flush=True)
`

// kernelSink listens on argv[1]:argv[2], takes one connection, reads it to
// EOF, prints "listening" first and "sha256 bytes" at the end.
const kernelSink = `
import hashlib, socket, sys
host, port = sys.argv[1], int(sys.argv[2])
fam = socket.AF_INET6 if ":" in host else socket.AF_INET
l = socket.socket(fam, socket.SOCK_STREAM)
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind((host, port))
l.listen(1)
print("listening", flush=True)
c, _ = l.accept()
c.settimeout(60)
h = hashlib.sha256()
n = 0
while True:
    b = c.recv(1 << 20)
    if not b:
        break
    h.update(b)
    n += len(b)
c.close()
print(h.hexdigest(), n, flush=True)
`

// TestBulkBothWays moves 256 MiB from the kernel to the stack and 256 MiB
// from the stack to the kernel and compares SHA-256 digests of what was
// sent and what arrived. The rate is logged; it is not asserted (speed
// targets are benchmarks).
func TestBulkBothWays(t *testing.T) {
	if testing.Short() {
		t.Skip("bulk transfer of 2×256 MiB skipped in -short mode")
	}
	forEachPeer(t, func(t *testing.T, p *peer, fam family) {
		if fam.name == "IPv6" && p.kind != linkAFPacketVnet {
			// Keep the package under a minute on two cores: IPv6 bulk
			// runs on one link kind only.
			t.Skip("IPv6 bulk runs on afpacket-vnet only, to bound the test time")
		}
		t.Run("kernel-to-stack", func(t *testing.T) { bulkKernelToStack(t, p, fam) })
		t.Run("stack-to-kernel", func(t *testing.T) { bulkStackToKernel(t, p, fam) })
	})
}

func bulkKernelToStack(t *testing.T, p *peer, fam family) {
	const port = 9100
	ln, err := p.node.Listen("tcp", hostPort(fam.stack, port))
	if err != nil {
		t.Fatalf("stack listen: %v", err)
	}
	defer ln.Close()
	type result struct {
		sum string
		n   int64
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
		c.SetDeadline(time.Now().Add(bulkTimeout))
		h := sha256.New()
		check := &patternChecker{}
		n, err := io.Copy(io.MultiWriter(h, check), c)
		if err == nil && check.firstBad >= 0 {
			err = fmt.Errorf("first byte differing from what the kernel sent at offset %d (%d bytes differ)", check.firstBad, check.bad)
		}
		done <- result{hex.EncodeToString(h.Sum(nil)), n, err}
	}()

	start := time.Now()
	out, err := p.kernel.Exec("timeout", strconv.Itoa(int(bulkTimeout/time.Second)), "python3", "-c", kernelSource,
		fam.stack.String(), strconv.Itoa(port), strconv.Itoa(bulkSize))
	elapsed := time.Since(start)
	if err != nil {
		t.Fatalf("kernel source: %v\n%s", err, out)
	}
	r := <-done
	if r.err != nil {
		t.Fatalf("stack receiver after %d bytes: %v", r.n, r.err)
	}
	want := fmt.Sprintf("%s %d", r.sum, r.n)
	if got := strings.TrimSpace(string(out)); got != want || r.n != bulkSize {
		t.Fatalf("kernel sent %q, stack received %q (want %d bytes)", got, want, bulkSize)
	}
	t.Logf("kernel→stack %d MiB intact in %v: %.0f Mbit/s", bulkSize>>20, elapsed.Round(time.Millisecond), mbits(bulkSize, elapsed))
}

func bulkStackToKernel(t *testing.T, p *peer, fam family) {
	const port = 9101
	cmd := p.kernel.Command("timeout", strconv.Itoa(int(bulkTimeout/time.Second)), "python3", "-c", kernelSink,
		fam.kernel.String(), strconv.Itoa(port))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	p.kernel.StartCmd(t, cmd)
	lines := bufio.NewScanner(stdout)
	if !lines.Scan() || lines.Text() != "listening" {
		t.Fatalf("kernel sink did not start: %q %s", lines.Text(), stderr.String())
	}

	c, err := p.node.Dial("tcp", hostPort(fam.kernel, port))
	if err != nil {
		t.Fatalf("stack dial: %v", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(bulkTimeout))
	start := time.Now()
	h := sha256.New()
	if err := sendRandom(c, h, bulkSize); err != nil {
		t.Fatalf("stack send: %v", err)
	}
	if err := c.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
		t.Fatalf("CloseWrite: %v", err)
	}
	if !lines.Scan() {
		t.Fatalf("kernel sink printed no digest: %v %s", lines.Err(), stderr.String())
	}
	elapsed := time.Since(start)
	got := lines.Text()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("kernel sink: %v %s", err, stderr.String())
	}
	if want := fmt.Sprintf("%s %d", hex.EncodeToString(h.Sum(nil)), bulkSize); got != want {
		t.Fatalf("kernel received %q, stack sent %q", got, want)
	}
	t.Logf("stack→kernel %d MiB intact in %v: %.0f Mbit/s", bulkSize>>20, elapsed.Round(time.Millisecond), mbits(bulkSize, elapsed))
}

// sendRandom writes n random bytes to c in 256 KiB writes, hashing them.
func sendRandom(c net.Conn, h io.Writer, n int) error {
	buf := make([]byte, 256<<10)
	for left := n; left > 0; {
		chunk := buf[:min(left, len(buf))]
		if _, err := rand.Read(chunk); err != nil {
			return err
		}
		h.Write(chunk)
		if _, err := c.Write(chunk); err != nil {
			return fmt.Errorf("after %d bytes: %w", n-left, err)
		}
		left -= len(chunk)
	}
	return nil
}

func mbits(n int, d time.Duration) float64 {
	return float64(n) * 8 / d.Seconds() / 1e6
}

// bulkPattern is what kernelSource sends: 1 MiB blocks made of the
// SHA-256 digests of "0", "1", ... "32767" (random-looking, so checksums
// see varied data), with block i's first 8 bytes replaced by i
// (little-endian). Unlike random data it lets the receiver name the first
// offset that went wrong.
var bulkPattern = sync.OnceValue(func() []byte {
	b := make([]byte, 0, 1<<20)
	for k := range 32768 {
		d := sha256.Sum256([]byte(strconv.Itoa(k)))
		b = append(b, d[:]...)
	}
	return b
})

// patternChecker compares a stream with bulkPattern.
type patternChecker struct {
	off      int64
	firstBad int64 // -1 while the stream matched
	bad      int64
	started  bool
}

func (c *patternChecker) Write(p []byte) (int, error) {
	if !c.started {
		c.started, c.firstBad = true, -1
	}
	tmpl := bulkPattern()
	var block [8]byte
	for i := 0; i < len(p); {
		pos := int(c.off % (1 << 20))
		want := tmpl[pos:]
		if pos < 8 {
			binary.LittleEndian.PutUint64(block[:], uint64(c.off>>20))
			want = append(block[pos:], tmpl[8:]...)
		}
		n := min(len(p)-i, len(want))
		if !bytes.Equal(p[i:i+n], want[:n]) {
			for j := 0; j < n; j++ {
				if p[i+j] != want[j] {
					if c.firstBad < 0 {
						c.firstBad = c.off + int64(j)
					}
					c.bad++
				}
			}
		}
		i += n
		c.off += int64(n)
	}
	return len(p), nil
}
