package bench

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"
)

// connectMode is one connection-rate workload.
type connectMode struct {
	name string
	// echo: the client sends one byte and waits for the server to echo it
	// before the server closes.
	echo bool
	// parallelism multiplies GOMAXPROCS to give the number of concurrent
	// clients (b.SetParallelism); 0 runs one client.
	parallelism int
}

var connectModes = []connectMode{
	{name: "close"},
	{name: "echo1", echo: true},
	// 4 × GOMAXPROCS(2 here) = 8 clients, as in the baselines note.
	{name: "echo1_par4xP", echo: true, parallelism: 4},
}

// BenchmarkConnect measures connections per second: the client connects,
// the server accepts, optionally a 1-byte echo, the server closes (so the
// TIME_WAIT state is on the server stack and the client's ephemeral ports
// do not run out), and the client reads EOF and closes. One op is one whole
// connection. Reported: conns/s, conns/cpu-s and allocations per connection.
func BenchmarkConnect(b *testing.B) {
	for _, impl := range Implementations() {
		b.Run(impl.Name, func(b *testing.B) {
			for _, mode := range connectModes {
				b.Run(mode.name, func(b *testing.B) {
					benchmarkConnect(b, impl, mode)
				})
			}
		})
	}
}

func benchmarkConnect(b *testing.B, impl Implementation, mode connectMode) {
	n := newNetwork(b, impl, DefaultConfig(1500))
	addr := netip.AddrPortFrom(n.ServerAddr(), benchPort)
	l, err := n.Listen(addr)
	if err != nil {
		b.Fatalf("listen: %v", err)
	}
	// The guard's context bounds every Dial (one context for the whole
	// loop: a per-dial context would add its allocations to every op) and
	// its deadlines unblock a connection that hangs.
	guard := newStallGuard(b, stallTimeout)
	srv := startEchoServer(l, mode.echo, guard)
	defer func() {
		if err := srv.stop(); err != nil {
			b.Error(guard.explain(err))
		}
	}()
	// One connection before the timer, so lazily built state (route
	// caches, listener queues) is not measured.
	if err := connectOnce(guard, n, addr, mode.echo); err != nil {
		b.Fatalf("first connection: %v", guard.explain(err))
	}

	b.ReportAllocs()
	retransBefore := retransmits(n)
	cpuBefore := mustCPUTime(b)
	b.ResetTimer()
	if mode.parallelism == 0 {
		for range b.N {
			if err := connectOnce(guard, n, addr, mode.echo); err != nil {
				b.Fatal(guard.explain(err))
			}
		}
	} else {
		b.SetParallelism(mode.parallelism)
		var firstErr error
		var errOnce sync.Once
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := connectOnce(guard, n, addr, mode.echo); err != nil {
					errOnce.Do(func() { firstErr = err })
					return
				}
			}
		})
		if firstErr != nil {
			b.Fatal(guard.explain(firstErr))
		}
	}
	b.StopTimer()
	cpu := mustCPUTime(b) - cpuBefore
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(b.N)/s, "conns/s")
	}
	reportPerCPU(b, float64(b.N), cpu, "conns/cpu-s")
	reportRetransmits(b, n, retransBefore)
}

// connectOnce is the client side of one connection; g bounds it and counts
// it as progress when it succeeds.
func connectOnce(g *stallGuard, n Network, addr netip.AddrPort, echo bool) (err error) {
	c, err := n.Dial(g.ctx, addr)
	if err != nil {
		return err
	}
	g.track(c)
	defer func() {
		g.untrack(c)
		c.Close()
		if err == nil {
			g.step()
		}
	}()
	if echo {
		b := [1]byte{'x'}
		if _, err := c.Write(b[:]); err != nil {
			return fmt.Errorf("client write: %w", err)
		}
		b[0] = 0
		if _, err := c.Read(b[:]); err != nil {
			return fmt.Errorf("client read: %w", err)
		}
		if b[0] != 'x' {
			return fmt.Errorf("echo returned %q, want %q", b[0], 'x')
		}
	}
	if err := readEOF(c); err != nil {
		return fmt.Errorf("client waiting for server close: %w", err)
	}
	return nil
}

// echoServer accepts connections, echoes one byte when echo is set, and
// closes each connection first. Every connection is served on its own
// goroutine, so parallel clients are served in parallel.
type echoServer struct {
	l     net.Listener
	wg    sync.WaitGroup
	mu    sync.Mutex
	first error
}

// Every accepted connection is tracked by g, so a stall unblocks it.
func startEchoServer(l net.Listener, echo bool, g *stallGuard) *echoServer {
	s := &echoServer{l: l}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return // listener closed by stop
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				g.track(c)
				defer g.untrack(c)
				s.serve(c, echo)
			}()
		}
	}()
	return s
}

func (s *echoServer) serve(c net.Conn, echo bool) {
	defer c.Close()
	if !echo {
		return
	}
	var b [1]byte
	if _, err := c.Read(b[:]); err != nil {
		s.fail(fmt.Errorf("server read: %w", err))
		return
	}
	if _, err := c.Write(b[:]); err != nil {
		s.fail(fmt.Errorf("server write: %w", err))
	}
}

func (s *echoServer) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.first == nil {
		s.first = err
	}
}

// stop closes the listener, waits for every connection to be served, and
// returns the first server-side error.
func (s *echoServer) stop() error {
	err := s.l.Close()
	s.wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	return errors.Join(err, s.first)
}
