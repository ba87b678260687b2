package ipv6

import (
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/netprov/netprov/integration/netns"
	"github.com/netprov/netprov/stack"
	"github.com/netprov/netprov/stack/buffer"
	"github.com/netprov/netprov/stack/header"
	"github.com/netprov/netprov/stack/link/afpacket"
)

// Tests against the Linux kernel: the stack on one end of a veth pair
// (AF_PACKET), the kernel in its own namespace on the other.

// requireRoot skips the test unless it may create namespaces (see
// netns.RequireRoot) and ping is installed.
func requireRoot(t *testing.T) {
	t.Helper()
	netns.RequireRoot(t)
	if _, err := exec.LookPath("ping"); err != nil {
		t.Skip("skipping: ping not installed")
	}
}

// kernelPeer is a stack attached to a veth whose other end is configured
// by the kernel with fd00:213::1/64.
type kernelPeer struct {
	s          *stack.Stack
	p          *Protocol
	nic        *stack.NIC
	udp        *testTransport
	peer       *netns.NS
	peerDev    string
	stackLL    netip.Addr
	kernelAddr netip.Addr
	stackAddr  netip.Addr
}

func newKernelPeer(t *testing.T) *kernelPeer {
	t.Helper()
	return newKernelPeerConfig(t, DefaultConfig(), 1500)
}

func newKernelPeerConfig(t *testing.T, cfg Config, mtu int) *kernelPeer {
	t.Helper()
	requireRoot(t)
	ours, peer := netns.New(t, ""), netns.New(t, "")
	dev, peerDev := netns.UniqueName("va"), netns.UniqueName("vb")
	// Created down (not with netns.Veth): IPv6 must be off on our end
	// before it comes up.
	ours.IP(t, "link", "add", dev, "mtu", strconv.Itoa(mtu), "type", "veth",
		"peer", "name", peerDev, "mtu", strconv.Itoa(mtu), "netns", peer.Name())
	// The kernel of our namespace must not speak IPv6 on the stack's
	// device: it would answer for the same link-local address.
	ours.Sysctl(t, "net.ipv6.conf."+dev+".disable_ipv6", "1")
	ours.LinkUp(t, dev)
	peer.Sysctl(t, "net.ipv6.conf."+peerDev+".accept_dad", "0")
	peer.AddAddr(t, peerDev, "fd00:213::1/64")
	peer.LinkUp(t, peerDev)

	s := stack.New(stack.Options{})
	p := Register(s, cfg)
	udp := &testTransport{num: udpNumber}
	s.RegisterTransportProtocol(udp)
	ep, err := afpacket.New(afpacket.Config{Interface: dev, NetNS: ours.Path()})
	if err != nil {
		t.Fatalf("afpacket: %v", err)
	}
	nic, err := s.AddNIC(ep, stack.NICOptions{Name: dev})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	kp := &kernelPeer{
		s: s, p: p, nic: nic, udp: udp, peer: peer, peerDev: peerDev,
		kernelAddr: netip.MustParseAddr("fd00:213::1"), stackAddr: netip.MustParseAddr("fd00:213::2"),
	}
	if err := nic.AddAddress(netip.PrefixFrom(kp.stackAddr, 64)); err != nil {
		t.Fatal(err)
	}
	ll, err := AddLinkLocalAddress(nic)
	if err != nil {
		t.Fatal(err)
	}
	kp.stackLL = ll.Addr()
	// Wait (bounded) for the kernel side's link-local address, which it
	// configures when the link comes up.
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(string(peer.IP(t, "-6", "addr", "show", "dev", peerDev)), "fe80::") {
		if time.Now().After(deadline) {
			t.Fatal("kernel link-local address never appeared")
		}
		time.Sleep(50 * time.Millisecond)
	}
	return kp
}

// ping runs ping -6 in the kernel's namespace and checks that every
// request was answered.
func (kp *kernelPeer) ping(t *testing.T, args ...string) {
	t.Helper()
	out := string(kp.peer.Run(t, append([]string{"ping", "-6", "-c", "3", "-i", "0.2", "-W", "2"}, args...)...))
	if !strings.Contains(out, " 3 received") || strings.Contains(out, "DUP!") {
		t.Errorf("ping %v:\n%s", args, out)
	}
}

func TestKernelPingsStack(t *testing.T) {
	kp := newKernelPeer(t)
	t.Run("global", func(t *testing.T) { kp.ping(t, kp.stackAddr.String()) })
	t.Run("link-local", func(t *testing.T) { kp.ping(t, "-I", kp.peerDev, kp.stackLL.String()) })
	// 3000 bytes: the kernel fragments the requests, the stack
	// reassembles them and fragments its replies.
	t.Run("fragmented", func(t *testing.T) { kp.ping(t, "-s", "3000", kp.stackAddr.String()) })
	st := kp.s.Stats()
	if st.IPv6.ReasmOKs.Load() < 3 || st.IPv6.FragOKs.Load() < 3 {
		t.Errorf("ReasmOKs %d FragOKs %d, want >= 3", st.IPv6.ReasmOKs.Load(), st.IPv6.FragOKs.Load())
	}
	if e, ok := kp.p.Table(kp.nic.ID()).Lookup(kp.kernelAddr); !ok || !e.State.Valid() {
		t.Errorf("kernel not in the neighbour table: %+v", e)
	}
}

// At the IPv6 minimum MTU both sides fragment to 1280-byte packets.
func TestKernelPingMinimumMTU(t *testing.T) {
	kp := newKernelPeerConfig(t, DefaultConfig(), MinMTU)
	if kp.nic.MTU() != MinMTU {
		t.Fatalf("NIC MTU %d", kp.nic.MTU())
	}
	// Each reply is fragmented by the stack: 3008 ICMP bytes make 3
	// fragments of at most 1232 payload bytes, 1308 bytes make 2.
	frags := &kp.s.Stats().IPv6.FragCreates
	for _, c := range []struct {
		args []string
		want uint64
	}{
		{[]string{"-s", "3000", kp.stackAddr.String()}, 3 * 3},
		{[]string{"-s", "1300", "-I", kp.peerDev, kp.stackLL.String()}, 3 * 2},
	} {
		before := frags.Load()
		kp.ping(t, c.args...)
		if got := frags.Load() - before; got != c.want {
			t.Errorf("ping %v: stack created %d fragments, want %d", c.args, got, c.want)
		}
	}
}

// The stack resolves the kernel with NDP and receives its port
// unreachable, for a small datagram and a fragmented one.
func TestKernelPortUnreachable(t *testing.T) {
	kp := newKernelPeer(t)
	r, err := kp.s.FindRoute(0, netip.Addr{}, kp.kernelAddr)
	if err != nil {
		t.Fatal(err)
	}
	for i, size := range []int{16, 3000} {
		b := make([]byte, header.UDPLen+size)
		header.UDPFields{SrcPort: 40000, DstPort: 9, Length: uint16(len(b))}.Emit(b)
		header.UDP(b).SetChecksum(header.UDPChecksum(b, kp.stackAddr, kp.kernelAddr))
		pkt := buffer.New(buffer.Headroom, len(b))
		copy(pkt.Append(len(b)), b)
		if err := r.WritePacket(pkt, stack.NetworkParams{Protocol: udpNumber}); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			if _, errs := kp.udp.got(); len(errs) > i {
				e := errs[i]
				if e.e.Kind != stack.ICMPPortUnreachable || e.ip.Dst != kp.kernelAddr || len(e.payload) < 8 ||
					header.UDP(e.payload).DstPort() != 9 {
					t.Errorf("size %d: error %+v", size, e)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("size %d: no port unreachable from the kernel", size)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// With DAD enabled, claiming the kernel's address fails: the kernel
// defends it against the stack's probe.
func TestKernelDefendsAgainstDAD(t *testing.T) {
	cfg := DefaultConfig()
	cfg.DADTransmits = 1
	kp := newKernelPeerConfig(t, cfg, 1500)
	// A /128: a second /64 in the same subnet would replace the first
	// address's connected route in the stack's table (see report).
	if err := kp.nic.AddAddress(netip.PrefixFrom(kp.kernelAddr, 128)); err != nil {
		t.Fatal(err)
	}
	ep := kp.p.Endpoint(kp.nic.ID())
	deadline := time.Now().Add(5 * time.Second)
	for {
		own, _ := ep.AddressReady(kp.stackAddr)
		_, dup := ep.AddressReady(kp.kernelAddr)
		if own && dup {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 5 s: own address ready %v, duplicate detected %v", own, dup)
		}
		time.Sleep(50 * time.Millisecond)
	}
	kp.ping(t, kp.stackAddr.String())
}
