package socketshim

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/provider"
)

// slowShutdownProvider is the kernel provider whose datagram sockets'
// Shutdown waits (as netstack's waits for its conduit to drain) until a
// getsockname on one of its sockets is served, at most slowShutdownBound
// (the scenario's only getsockname comes after the shutdown).
type slowShutdownProvider struct {
	*kernelProvider
	entered, release chan struct{}
	enterOnce        sync.Once
	releaseOnce      sync.Once
	timedOut         atomic.Bool
}

const slowShutdownBound = 3 * time.Second

func (p *slowShutdownProvider) Socket(family, sotype, proto int) (provider.Socket, error) {
	s, err := p.kernelProvider.Socket(family, sotype, proto)
	if err != nil {
		return nil, err
	}
	return &slowShutdownSocket{Socket: s, p: p, dgram: sotype&0xf == unix.SOCK_DGRAM}, nil
}

type slowShutdownSocket struct {
	provider.Socket
	p     *slowShutdownProvider
	dgram bool
}

func (s *slowShutdownSocket) Shutdown(how int) error {
	if s.dgram {
		s.p.enterOnce.Do(func() { close(s.p.entered) })
		select {
		case <-s.p.release:
		case <-time.After(slowShutdownBound):
			s.p.timedOut.Store(true)
		}
	}
	return s.Socket.Shutdown(how)
}

// GetSockName releases the shutdown once it has started (the shutdown's
// goroutine may start after this call is served; the shutdown waits for
// it in any case).
func (s *slowShutdownSocket) GetSockName() ([]byte, error) {
	select {
	case <-s.p.entered:
		s.p.releaseOnce.Do(func() { close(s.p.release) })
	case <-time.After(slowShutdownBound):
	}
	return s.Socket.GetSockName()
}

// TestSlowShutdownDoesNotStallOthers: a datagram socket's shutdown may
// wait (netstack drains the conduit for up to 2 s), so it is served on its
// own goroutine: while one thread of the target is in such a shutdown,
// another thread's getsockname (served inline) is answered. Here the
// shutdown waits for exactly that getsockname; served inline, it held up
// the receiving goroutine, the getsockname was not received until the
// shutdown gave up after slowShutdownBound.
func TestSlowShutdownDoesNotStallOthers(t *testing.T) {
	requireRoot(t)
	kp, err := newKernelProvider()
	if err != nil {
		t.Fatal(err)
	}
	defer kp.Close()
	p := &slowShutdownProvider{kernelProvider: kp, entered: make(chan struct{}), release: make(chan struct{})}
	got, _ := runShimmedOn(t, "slowshutdown", p)
	if got.err != nil {
		t.Errorf("shimmed run: %v\nstderr %s", got.err, got.stderr)
	}
	for k, want := range map[string]string{
		"shutdown_trapped": "true",
		"getsockname":      "ok",
		"shutdown":         "ok",
	} {
		if got.out[k] != want {
			t.Errorf("%s = %q, want %q", k, got.out[k], want)
		}
	}
	if p.timedOut.Load() {
		t.Errorf("the shutdown was not released by the concurrent getsockname: it held up the Server for %v", slowShutdownBound)
	}
	if t.Failed() {
		t.Logf("stdout:\n%s\nstderr:\n%s", got.stdout, got.stderr)
	}
}

// scenarioSlowShutdown: one thread shuts a connected UDP socket down;
// once it is in the call (trapped), another thread asks getsockname.
func scenarioSlowShutdown() {
	u, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	kv("socket", en(err))
	kv("connect", en(sysSockaddr(unix.SYS_CONNECT, u, sin(localhost, 9))))
	tidCh, done := make(chan int, 1), make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		tidCh <- unix.Gettid()
		done <- unix.Shutdown(u, unix.SHUT_WR)
	}()
	tid := <-tidCh
	// Wait (bounded) until that thread is in shutdown(2) (nr 48).
	path := "/proc/self/task/" + strconv.Itoa(tid) + "/syscall"
	trapped := false
	for i := 0; i < 500 && !trapped; i++ {
		b, _ := os.ReadFile(path)
		if trapped = strings.HasPrefix(string(b), fmt.Sprintf("%d ", unix.SYS_SHUTDOWN)); !trapped {
			time.Sleep(10 * time.Millisecond)
		}
	}
	kv("shutdown_trapped", trapped)
	_, _, err = getName(unix.SYS_GETSOCKNAME, u, 16)
	kv("getsockname", en(err))
	kv("shutdown", en(<-done))
}
