// Command shimload is the one client and server program of the shim
// benchmarks (bench/shim): the same binary runs natively in a kernel
// namespace and unmodified under `netprov run`, so every client setup is
// measured with the same code.
//
//	shimload serve -echo :7001 -once :7002     kernel peer
//	shimload rr   -addr IP:7001 -d 2s           1-byte request/response on one connection
//	shimload cps  -addr IP:7002 -d 2s           connect + 1-byte echo + close, sequential
//	shimload call -n 100000                     getsockname(2) on a TCP socket, ns/call
//
// Clients print one JSON object (Result) on stdout.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Result is what a client prints.
type Result struct {
	Op      string  `json:"op"`
	Count   int     `json:"count"`
	Seconds float64 `json:"seconds"`
	// PerSecond is Count/Seconds (round trips or connections per second).
	PerSecond float64 `json:"per_second"`
	// NsPerOp is Seconds/Count in nanoseconds.
	NsPerOp float64 `json:"ns_per_op"`
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: shimload serve|rr|cps|call [flags]")
		os.Exit(2)
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	addr := fs.String("addr", "", "server address (rr, cps)")
	dur := fs.Duration("d", 2*time.Second, "how long to run (rr, cps)")
	maxOps := fs.Int("n", 1<<30, "at most this many operations")
	echo := fs.String("echo", ":7001", "serve: echo listener (persistent connections)")
	once := fs.String("once", ":7002", "serve: one-shot listener (echo 1 byte, then close)")
	fs.Parse(os.Args[2:])
	var (
		res Result
		err error
	)
	switch os.Args[1] {
	case "serve":
		err = serve(*echo, *once)
	case "rr":
		res, err = requestResponse(*addr, *dur, *maxOps)
	case "cps":
		res, err = connections(*addr, *dur, *maxOps)
	case "call":
		res, err = interceptedCall(*maxOps)
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "shimload:", err)
		os.Exit(1)
	}
	json.NewEncoder(os.Stdout).Encode(res)
}

func result(op string, n int, d time.Duration) Result {
	r := Result{Op: op, Count: n, Seconds: d.Seconds()}
	if n > 0 && d > 0 {
		r.PerSecond = float64(n) / d.Seconds()
		r.NsPerOp = float64(d.Nanoseconds()) / float64(n)
	}
	return r
}

// serve runs the kernel peer's two listeners until killed.
func serve(echoAddr, onceAddr string) error {
	le, err := net.Listen("tcp4", echoAddr)
	if err != nil {
		return err
	}
	lo, err := net.Listen("tcp4", onceAddr)
	if err != nil {
		return err
	}
	fmt.Println("ready")
	errc := make(chan error, 2)
	go func() { errc <- acceptLoop(le, echoConn) }()
	go func() { errc <- acceptLoop(lo, onceConn) }()
	return <-errc
}

func acceptLoop(l net.Listener, handle func(net.Conn)) error {
	for {
		c, err := l.Accept()
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				continue
			}
			return err
		}
		go handle(c)
	}
}

// echoConn echoes until EOF.
func echoConn(c net.Conn) {
	defer c.Close()
	io.Copy(c, c)
}

// onceConn echoes one byte and closes first, so TIME_WAIT stays with the
// server and the clients' ephemeral ports never run out.
func onceConn(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	var b [1]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		return
	}
	c.Write(b[:])
}

// requestResponse does 1-byte round trips on one connection (TCP_NODELAY,
// Go's default) for d.
func requestResponse(addr string, d time.Duration, maxOps int) (Result, error) {
	c, err := net.DialTimeout("tcp4", addr, 10*time.Second)
	if err != nil {
		return Result{}, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(d + 10*time.Second))
	var b [1]byte
	n := 0
	start := time.Now()
	deadline := start.Add(d)
	for n < maxOps {
		if _, err := c.Write(b[:]); err != nil {
			return Result{}, err
		}
		if _, err := io.ReadFull(c, b[:]); err != nil {
			return Result{}, err
		}
		n++
		if n%64 == 0 && time.Now().After(deadline) {
			break
		}
	}
	return result("rr", n, time.Since(start)), nil
}

// connections opens sequential connections for d: connect, send 1 byte,
// read it back, read the server's EOF, close.
func connections(addr string, d time.Duration, maxOps int) (Result, error) {
	n := 0
	start := time.Now()
	deadline := start.Add(d)
	var b [1]byte
	for n < maxOps && time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp4", addr, 10*time.Second)
		if err != nil {
			return Result{}, fmt.Errorf("connection %d: %w", n, err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write(b[:]); err != nil {
			c.Close()
			return Result{}, fmt.Errorf("connection %d: %w", n, err)
		}
		if _, err := io.ReadFull(c, b[:]); err != nil {
			c.Close()
			return Result{}, fmt.Errorf("connection %d: %w", n, err)
		}
		if _, err := c.Read(b[:]); !errors.Is(err, io.EOF) {
			c.Close()
			return Result{}, fmt.Errorf("connection %d: want EOF, got %v", n, err)
		}
		c.Close()
		n++
	}
	return result("cps", n, time.Since(start)), nil
}

// interceptedCall times getsockname(2) on an unbound TCP socket: under
// netprov the call is trapped by seccomp and served (netstack) or
// continued to the kernel (host provider's passthrough sockets).
func interceptedCall(n int) (Result, error) {
	if n <= 0 || n == 1<<30 {
		n = 100000
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return Result{}, fmt.Errorf("socket: %w", err)
	}
	defer unix.Close(fd)
	var sa unix.RawSockaddrInet4
	call := func() error {
		l := uint32(unsafe.Sizeof(sa))
		_, _, e := unix.Syscall(unix.SYS_GETSOCKNAME, uintptr(fd), uintptr(unsafe.Pointer(&sa)), uintptr(unsafe.Pointer(&l)))
		if e != 0 {
			return fmt.Errorf("getsockname: %w", e)
		}
		if sa.Family != unix.AF_INET {
			return fmt.Errorf("getsockname: family %d", sa.Family)
		}
		return nil
	}
	for range 100 { // warm up
		if err := call(); err != nil {
			return Result{}, err
		}
	}
	start := time.Now()
	for range n {
		if err := call(); err != nil {
			return Result{}, err
		}
	}
	return result("call", n, time.Since(start)), nil
}
