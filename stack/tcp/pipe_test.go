package tcp

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/netprov/netprov/stack"
	"github.com/netprov/netprov/stack/link/pipe"
	"github.com/netprov/netprov/stack/waiter"
	"golang.org/x/sys/unix"
)

// pipePair is two stacks joined by an in-memory cable.
type pipePair struct {
	a, b         *stack.Stack
	pa, pb       *Protocol
	addrA, addrB netip.Addr
	la, lb       *pipe.Endpoint
}

func newPipePair(t testing.TB, mtu int, im pipe.Impairments, cfg Config) *pipePair {
	t.Helper()
	la, lb := pipe.New(pipe.Config{MTU: mtu, AToB: im, BToA: im, Seed: 42})
	pp := &pipePair{addrA: netip.MustParseAddr("10.0.1.1"), addrB: netip.MustParseAddr("10.0.1.2"), la: la, lb: lb}
	mk := func(l *pipe.Endpoint, peer *pipe.Endpoint, addr netip.Addr) (*stack.Stack, *Protocol) {
		s := stack.New(stack.Options{})
		s.RegisterNetworkProtocol(&testIP{s: s, peerMAC: peer.LinkAddress()})
		p := Register(s, cfg)
		nic, err := s.AddNIC(l, stack.NICOptions{Name: "eth0"})
		if err != nil {
			t.Fatal(err)
		}
		if err := nic.AddAddress(netip.PrefixFrom(addr, 24)); err != nil {
			t.Fatal(err)
		}
		return s, p
	}
	pp.a, pp.pa = mk(la, lb, pp.addrA)
	pp.b, pp.pb = mk(lb, la, pp.addrB)
	t.Cleanup(func() { _ = la.Close() })
	return pp
}

// connect returns a connected (client on A, server on B) pair.
func (pp *pipePair) connect(t testing.TB) (client, server stack.Endpoint) {
	t.Helper()
	l, _ := pp.pb.NewEndpoint(unix.AF_INET)
	if err := l.Bind(netip.AddrPortFrom(pp.addrB, 5001)); err != nil {
		t.Fatal(err)
	}
	if err := l.Listen(128); err != nil {
		t.Fatal(err)
	}
	c, _ := pp.pa.NewEndpoint(unix.AF_INET)
	if err := c.Connect(netip.AddrPortFrom(pp.addrB, 5001)); err != unix.EINPROGRESS {
		t.Fatalf("connect = %v", err)
	}
	if err := waitReady(c, waiter.EventOut, 10*time.Second); err != nil {
		t.Fatalf("connect wait: %v", err)
	}
	if err := c.Connect(netip.AddrPortFrom(pp.addrB, 5001)); err != nil {
		t.Fatalf("connect = %v", err)
	}
	var s stack.Endpoint
	deadline := time.Now().Add(10 * time.Second)
	for {
		var err error
		s, _, err = l.Accept()
		if err == nil {
			break
		}
		if err != unix.EAGAIN || time.Now().After(deadline) {
			t.Fatalf("accept = %v", err)
		}
		_ = waitReady(l, waiter.EventIn, time.Second)
	}
	l.Close()
	return c, s
}

// dumpEP describes an endpoint's state when a transfer fails.
func dumpEP(e *endpoint) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return fmt.Sprintf("state=%v una=%d nxt=%d write=%d sndWnd=%d cwnd=%d ssthresh=%d ca=%d highRxt=%d lostEnd=%d sacked=%v rto=%v backoff=%d | rcvNxt=%d copied=%d unread=%d cap=%d ooo=%v rcvWnd=%d",
		e.state, e.sndUna, e.sndNxt, e.writeSeq, e.sndWnd, e.cw.Cwnd, e.cw.SSThresh, e.ca, e.highRxt, e.lostEnd, e.sacked, e.rto, e.backoff,
		e.rcvNxt, e.copiedSeq, e.rcvBuf.n, e.rcvBuf.capacity(), e.ooo, e.rcvWnd)
}

var errTimeout = errors.New("timed out waiting for readiness")

// waitReady blocks until ep reports one of mask (or an error/hang-up).
func waitReady(ep stack.Endpoint, mask waiter.EventMask, d time.Duration) error {
	e, ch := waiter.ChannelEntry(mask)
	ep.EventQueue().Register(e)
	defer ep.EventQueue().Unregister(e)
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		if ep.Readiness(mask|waiter.EventErr|waiter.EventHUp) != 0 {
			return nil
		}
		select {
		case <-ch:
		case <-t.C:
			return errTimeout
		}
	}
}

// writeAll writes data, waiting for POLLOUT, then shuts down writing.
func writeAll(ep stack.Endpoint, data []byte, chunk int) error {
	for len(data) > 0 {
		n, err := ep.Write(data[:min(chunk, len(data))], stack.WriteOptions{})
		data = data[n:]
		if err == unix.EAGAIN {
			if err := waitReady(ep, waiter.EventOut, 20*time.Second); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
	}
	return ep.Shutdown(unix.SHUT_WR)
}

// readAll reads to EOF and returns the SHA-256 and length.
func readAll(ep stack.Endpoint, bufSize int) ([32]byte, int, error) {
	h := sha256.New()
	buf := make([]byte, bufSize)
	total := 0
	for {
		r, err := ep.Read(buf, stack.ReadOptions{})
		if err == unix.EAGAIN {
			if err := waitReady(ep, waiter.EventIn, 20*time.Second); err != nil {
				return [32]byte{}, total, err
			}
			continue
		}
		if err != nil {
			return [32]byte{}, total, err
		}
		if r.N == 0 {
			break
		}
		h.Write(buf[:r.N])
		total += r.N
	}
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	return sum, total, nil
}

// transferBothWays sends size random bytes each way at once and checks
// both arrive intact.
func transferBothWays(t *testing.T, pp *pipePair, size int) (rcvbufC, rcvbufS int) {
	t.Helper()
	c, s := pp.connect(t)
	rng := rand.New(rand.NewPCG(1, 2))
	up := make([]byte, size)
	down := make([]byte, size)
	for i := range up {
		up[i] = byte(rng.Uint32())
		down[i] = byte(rng.Uint32())
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	var gotUp, gotDown [32]byte
	var nUp, nDown int
	wg.Add(4)
	go func() { defer wg.Done(); errs <- writeAll(c, up, 256<<10) }()
	go func() { defer wg.Done(); errs <- writeAll(s, down, 256<<10) }()
	go func() {
		defer wg.Done()
		var err error
		gotUp, nUp, err = readAll(s, 256<<10)
		errs <- err
	}()
	go func() {
		defer wg.Done()
		var err error
		gotDown, nDown, err = readAll(c, 256<<10)
		errs <- err
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Logf("client %s", dumpEP(c.(*endpoint)))
			t.Logf("server %s", dumpEP(s.(*endpoint)))
			t.Logf("pipe A: %+v %+v", pp.la.Stats(), pp.la.ImpairmentStats())
			t.Logf("pipe B: %+v %+v", pp.lb.Stats(), pp.lb.ImpairmentStats())
			var sb strings.Builder
			_ = pp.a.Stats().WriteSNMP(&sb)
			_ = pp.b.Stats().WriteSNMP(&sb)
			t.Logf("%s", sb.String())
			t.Fatalf("transfer: %v (up %d/%d, down %d/%d)", err, nUp, size, nDown, size)
		}
	}
	if nUp != size || gotUp != sha256.Sum256(up) {
		t.Fatalf("client->server: %d bytes, checksum match %v", nUp, gotUp == sha256.Sum256(up))
	}
	if nDown != size || gotDown != sha256.Sum256(down) {
		t.Fatalf("server->client: %d bytes, checksum match %v", nDown, gotDown == sha256.Sum256(down))
	}
	ce, se := c.(*endpoint), s.(*endpoint)
	ce.mu.Lock()
	rcvbufC = ce.rcvbuf
	ce.mu.Unlock()
	se.mu.Lock()
	rcvbufS = se.rcvbuf
	se.mu.Unlock()
	c.Close()
	s.Close()
	return rcvbufC, rcvbufS
}

func TestPipeTransferClean(t *testing.T) {
	for _, mtu := range []int{1500, 65535} {
		pp := newPipePair(t, mtu, pipe.Impairments{}, DefaultConfig())
		start := time.Now()
		rc, rs := transferBothWays(t, pp, 64<<20)
		t.Logf("MTU %d: 64 MiB each way in %v, rcvbuf autotuned to %d / %d, RcvQDrop %d/%d, RetransSegs %d/%d", mtu, time.Since(start), rc, rs,
			pp.a.Stats().TCPExt.TCPRcvQDrop.Load(), pp.b.Stats().TCPExt.TCPRcvQDrop.Load(),
			pp.a.Stats().TCP.RetransSegs.Load(), pp.b.Stats().TCP.RetransSegs.Load())
		// DRS grew both receive buffers beyond tcp_rmem[1].
		if rc <= 131072 || rs <= 131072 {
			t.Fatalf("receive buffers not autotuned: %d / %d", rc, rs)
		}
	}
}

func TestPipeTransferLoss2(t *testing.T) {
	pp := newPipePair(t, 9000, pipe.Impairments{Loss: 0.02, Reorder: 0.01, Duplicate: 0.01}, DefaultConfig())
	start := time.Now()
	transferBothWays(t, pp, 64<<20)
	ta, tb := &pp.a.Stats().TCPExt, &pp.b.Stats().TCPExt
	rtx := pp.a.Stats().TCP.RetransSegs.Load() + pp.b.Stats().TCP.RetransSegs.Load()
	to := ta.TCPTimeouts.Load() + tb.TCPTimeouts.Load()
	t.Logf("2%% loss: %v, RetransSegs=%d TCPTimeouts=%d FastRetrans=%d SackRecovery=%d", time.Since(start), rtx, to,
		ta.TCPFastRetrans.Load()+tb.TCPFastRetrans.Load(), ta.TCPSackRecovery.Load()+tb.TCPSackRecovery.Load())
	if rtx == 0 || to*10 > rtx {
		t.Fatalf("timeouts %d of %d retransmissions: SACK recovery should do most of the work", to, rtx)
	}
}

func TestPipeTransferLoss10(t *testing.T) {
	pp := newPipePair(t, 65535, pipe.Impairments{Loss: 0.10, Reorder: 0.02, Duplicate: 0.02}, DefaultConfig())
	start := time.Now()
	transferBothWays(t, pp, 64<<20)
	t.Logf("10%% loss: %v, RetransSegs=%d TCPTimeouts=%d", time.Since(start),
		pp.a.Stats().TCP.RetransSegs.Load()+pp.b.Stats().TCP.RetransSegs.Load(),
		pp.a.Stats().TCPExt.TCPTimeouts.Load()+pp.b.Stats().TCPExt.TCPTimeouts.Load())
}

// newPipePairGSO joins two stacks with a GSO-capable cable (super-segments
// delivered whole, like a veth pair between two GRO stacks).
func newPipePairGSO(t testing.TB, mtu int, im pipe.Impairments) *pipePair {
	t.Helper()
	la, lb := pipe.New(pipe.Config{MTU: mtu, GSO: true, AToB: im, BToA: im, Seed: 7})
	pp := &pipePair{addrA: netip.MustParseAddr("10.0.1.1"), addrB: netip.MustParseAddr("10.0.1.2"), la: la, lb: lb}
	mk := func(l, peer *pipe.Endpoint, addr netip.Addr) (*stack.Stack, *Protocol) {
		s := stack.New(stack.Options{})
		s.RegisterNetworkProtocol(&testIP{s: s, peerMAC: peer.LinkAddress()})
		p := Register(s, DefaultConfig())
		nic, err := s.AddNIC(l, stack.NICOptions{Name: "eth0"})
		if err != nil {
			t.Fatal(err)
		}
		if err := nic.AddAddress(netip.PrefixFrom(addr, 24)); err != nil {
			t.Fatal(err)
		}
		return s, p
	}
	pp.a, pp.pa = mk(la, lb, pp.addrA)
	pp.b, pp.pb = mk(lb, la, pp.addrB)
	t.Cleanup(func() { _ = la.Close() })
	return pp
}

// GSO: on a GSO link with MTU 1500 the sender builds super-segments of
// whole MSS pieces (OutSegs counts the pieces), and 64 MiB each way arrive
// intact, also with 2 % loss.
func TestPipeTransferGSO(t *testing.T) {
	for _, loss := range []float64{0, 0.02} {
		pp := newPipePairGSO(t, 1500, pipe.Impairments{Loss: loss})
		start := time.Now()
		transferBothWays(t, pp, 64<<20)
		frames := pp.la.Stats().TxPackets
		segs := pp.a.Stats().TCP.OutSegs.Load()
		t.Logf("GSO loss %.0f%%: %v, %d frames for %d segments", loss*100, time.Since(start), frames, segs)
		if loss == 0 && frames*2 > segs {
			t.Fatalf("%d frames for %d segments: super-segments not used", frames, segs)
		}
	}
}
