package ipv4

import (
	"bytes"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/integration/netns"
	"github.com/netprov/netprov/stack"
	"github.com/netprov/netprov/stack/arp"
	"github.com/netprov/netprov/stack/buffer"
	"github.com/netprov/netprov/stack/header"
	"github.com/netprov/netprov/stack/link/afpacket"
)

// kernelPeer is a veth pair between two test namespaces: the kernel owns
// one end (with an address) and the stack the other, through AF_PACKET.
type kernelPeer struct {
	kernelNS, stackNS     *netns.NS
	vethKernel, vethStack string
}

func newKernelPeer(t *testing.T, kernelAddr string, stackMAC header.MAC) *kernelPeer {
	t.Helper()
	k := &kernelPeer{
		kernelNS: netns.New(t, "k"), stackNS: netns.New(t, "s"),
		vethKernel: netns.UniqueName("a"), vethStack: netns.UniqueName("b"),
	}
	// Created down (not with netns.Veth): the stack's end gets its MAC
	// and loses IPv6 before it comes up.
	k.kernelNS.IP(t, "link", "add", k.vethKernel, "type", "veth", "peer", "name", k.vethStack, "netns", k.stackNS.Name())
	k.kernelNS.IP(t, "addr", "add", kernelAddr, "dev", k.vethKernel)
	k.kernelNS.LinkUp(t, k.vethKernel)
	// The stack's namespace kernel must stay quiet on the stack's wire.
	k.stackNS.Sysctl(t, "net.ipv6.conf.all.disable_ipv6", "1")
	k.stackNS.IP(t, "link", "set", k.vethStack, "address", stackMAC.String())
	k.stackNS.LinkUp(t, k.vethStack)
	return k
}

// kernelStack is a stack with ARP, IPv4 and a recording UDP transport on
// the stack's end of a kernelPeer, holding 10.213.7.2/24.
type kernelStack struct {
	s   *stack.Stack
	nic *stack.NIC
	ip  *Protocol
	arp *arp.Protocol
	udp *fakeTransport
}

func newKernelStack(t *testing.T, k *kernelPeer) *kernelStack {
	t.Helper()
	ep, err := afpacket.New(afpacket.Config{Interface: k.vethStack, NetNS: k.stackNS.Path()})
	if err != nil {
		t.Fatalf("afpacket: %v", err)
	}
	ks := &kernelStack{s: stack.New(stack.Options{}), udp: &fakeTransport{num: header.ProtoUDP}}
	ks.arp = arp.Register(ks.s)
	ks.ip = Register(ks.s, DefaultConfig())
	ks.s.RegisterTransportProtocol(ks.udp)
	if ks.nic, err = ks.s.AddNIC(ep, stack.NICOptions{Name: "eth0"}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ks.s.Close() })
	if err := ks.nic.AddAddress(netip.MustParsePrefix("10.213.7.2/24")); err != nil {
		t.Fatal(err)
	}
	return ks
}

// The kernel pings the stack: ARP and ICMP echo, then 4000-byte pings that
// the kernel fragments, the stack reassembles, answers, and fragments back.
func TestKernelPing(t *testing.T) {
	stackMAC := header.MAC{0x02, 0x13, 0, 0, 7, 2}
	k := newKernelPeer(t, "10.213.7.1/24", stackMAC)
	ks := newKernelStack(t, k)
	s, nic, udp := ks.s, ks.nic, ks.udp

	out := string(k.kernelNS.Run(t, "ping", "-n", "-c", "3", "-i", "0.2", "-W", "2", "10.213.7.2"))
	if !strings.Contains(out, "3 received") {
		t.Fatalf("ping output:\n%s", out)
	}
	neigh := string(k.kernelNS.IP(t, "neigh", "show", "10.213.7.2"))
	if !strings.Contains(neigh, stackMAC.String()) {
		t.Fatalf("kernel neighbour entry %q lacks the stack's MAC %v", neigh, stackMAC)
	}
	if e, ok := ks.arp.Table(nic.ID()).Lookup(netip.MustParseAddr("10.213.7.1")); !ok || !e.State.Valid() {
		t.Fatalf("stack did not learn the kernel's address: %+v %v", e, ok)
	}

	out = string(k.kernelNS.Run(t, "ping", "-n", "-c", "2", "-i", "0.2", "-W", "2", "-s", "4000", "10.213.7.2"))
	if !strings.Contains(out, "2 received") || !strings.Contains(out, "4008 bytes from 10.213.7.2") {
		t.Fatalf("fragmented ping output:\n%s", out)
	}
	st := &s.Stats().IP
	if st.ReasmOKs.Load() < 2 || st.FragOKs.Load() < 2 || st.FragCreates.Load() < 6 {
		t.Fatalf("ReasmOKs=%d FragOKs=%d FragCreates=%d, want >= 2, 2, 6",
			st.ReasmOKs.Load(), st.FragOKs.Load(), st.FragCreates.Load())
	}
	if n := s.Stats().ICMP.OutEchoReps.Load(); n != 5 {
		t.Fatalf("OutEchoReps = %d, want 5", n)
	}

	// A UDP datagram to a closed kernel port: the kernel's ICMP port
	// unreachable reaches the transport as ICMPPortUnreachable.
	kernelAddr := netip.MustParseAddr("10.213.7.1")
	r, err := s.FindRoute(0, netip.Addr{}, kernelAddr)
	if err != nil {
		t.Fatal(err)
	}
	dgram := make([]byte, header.UDPLen+5)
	copy(dgram[header.UDPLen:], "hello")
	header.UDPFields{SrcPort: 40000, DstPort: 9, Length: uint16(len(dgram))}.Emit(dgram)
	header.UDP(dgram).SetChecksum(header.UDPChecksum(dgram, r.LocalAddr, kernelAddr))
	pkt := buffer.New(buffer.Headroom, len(dgram))
	copy(pkt.Append(len(dgram)), dgram)
	if err := r.WritePacket(pkt, stack.NetworkParams{Protocol: header.ProtoUDP}); err != nil {
		t.Fatal(err)
	}
	e := waitErrors(t, udp, 1)[0]
	if e.err.Kind != stack.ICMPPortUnreachable || e.info.Src != r.LocalAddr || e.info.Dst != kernelAddr ||
		!bytes.Equal(e.payload[:len(dgram)], dgram) {
		t.Fatalf("kernel's error delivered as %+v %+v %x", e.err, e.info, e.payload)
	}
}

func udpPacket(t *testing.T, r *stack.Route, size int) *buffer.Packet {
	t.Helper()
	dgram := make([]byte, size)
	for i := header.UDPLen; i < size; i++ {
		dgram[i] = byte(i)
	}
	header.UDPFields{SrcPort: 40001, DstPort: 9, Length: uint16(size)}.Emit(dgram)
	header.UDP(dgram).SetChecksum(header.UDPChecksum(dgram, r.LocalAddr, r.RemoteAddr))
	pkt := buffer.New(buffer.Headroom, size)
	copy(pkt.Append(size), dgram)
	return pkt
}

// Path MTU discovery against a kernel router: a DF datagram too big for
// the router's next link draws an ICMP fragmentation needed, which lowers
// the path MTU; a larger datagram without DF is then fragmented to fit and
// reassembled by the far kernel, whose port unreachable comes back.
func TestKernelRouterFragNeeded(t *testing.T) {
	stackMAC := header.MAC{0x02, 0x13, 0, 0, 7, 3}
	k := newKernelPeer(t, "10.213.7.1/24", stackMAC)
	far := netns.New(t, "f")
	vr, vf := netns.UniqueName("c"), netns.UniqueName("d")
	netns.Veth(t, k.kernelNS, vr, far, vf)
	k.kernelNS.SetMTU(t, vr, 1300)
	far.SetMTU(t, vf, 1300)
	k.kernelNS.AddAddr(t, vr, "10.213.6.1/24")
	k.kernelNS.Sysctl(t, "net.ipv4.ip_forward", "1")
	far.AddAddr(t, vf, "10.213.6.2/24")
	far.AddRoute(t, "default", "via", "10.213.6.1")

	ks := newKernelStack(t, k)
	s, nic, ip, udp := ks.s, ks.nic, ks.ip, ks.udp
	s.AddRoute(stack.RouteEntry{Dst: netip.MustParsePrefix("10.213.6.0/24"), Gateway: netip.MustParseAddr("10.213.7.1"), NIC: nic.ID()})
	farAddr := netip.MustParseAddr("10.213.6.2")
	r, err := s.FindRoute(0, netip.Addr{}, farAddr)
	if err != nil {
		t.Fatal(err)
	}

	if err := r.WritePacket(udpPacket(t, r, 1400), stack.NetworkParams{Protocol: header.ProtoUDP, DontFragment: true}); err != nil {
		t.Fatal(err)
	}
	e := waitErrors(t, udp, 1)[0]
	if e.err.Kind != stack.ICMPFragNeeded || e.err.MTU != 1300 || e.info.Dst != farAddr {
		t.Fatalf("kernel router's error delivered as %+v %+v, want FragNeeded MTU 1300", e.err, e.info)
	}
	if got := ip.PathMTU(farAddr); got != 1300 {
		t.Fatalf("PathMTU = %d, want 1300", got)
	}
	pkt := udpPacket(t, r, 1400)
	if err := r.WritePacket(pkt, stack.NetworkParams{Protocol: header.ProtoUDP, DontFragment: true}); !errors.Is(err, unix.EMSGSIZE) {
		t.Fatalf("DF datagram above the path MTU: %v, want EMSGSIZE", err)
	}
	if err := r.WritePacket(udpPacket(t, r, 2000), stack.NetworkParams{Protocol: header.ProtoUDP}); err != nil {
		t.Fatal(err)
	}
	e = waitErrors(t, udp, 2)[1]
	if e.err.Kind != stack.ICMPPortUnreachable || e.info.Dst != farAddr {
		t.Fatalf("far host's answer delivered as %+v %+v, want port unreachable", e.err, e.info)
	}
}
