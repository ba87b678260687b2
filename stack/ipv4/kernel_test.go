package ipv4

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/stack"
	"github.com/netprov/netprov/stack/arp"
	"github.com/netprov/netprov/stack/buffer"
	"github.com/netprov/netprov/stack/header"
	"github.com/netprov/netprov/stack/link/afpacket"
)

// kernelPeer is a veth pair between two test namespaces: the kernel owns
// one end (with an address) and the stack the other, through AF_PACKET.
type kernelPeer struct {
	nsKernel, nsStack string
	vethKernel        string
	vethStack         string
}

func runCmd(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func newKernelPeer(t *testing.T, kernelAddr string, stackMAC header.MAC) *kernelPeer {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("kernel test needs root (network namespaces, veth, AF_PACKET)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("kernel test needs iproute2's ip")
	}
	var rnd [3]byte
	_, _ = rand.Read(rnd[:])
	sfx := hex.EncodeToString(rnd[:])
	k := &kernelPeer{
		nsKernel: "np" + sfx + "k", nsStack: "np" + sfx + "s",
		vethKernel: "np" + sfx + "a", vethStack: "np" + sfx + "b",
	}
	runCmd(t, "ip", "netns", "add", k.nsKernel)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", k.nsKernel).Run() })
	runCmd(t, "ip", "netns", "add", k.nsStack)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", k.nsStack).Run() })
	runCmd(t, "ip", "link", "add", k.vethKernel, "netns", k.nsKernel, "type", "veth",
		"peer", "name", k.vethStack, "netns", k.nsStack)
	runCmd(t, "ip", "-n", k.nsKernel, "addr", "add", kernelAddr, "dev", k.vethKernel)
	runCmd(t, "ip", "-n", k.nsKernel, "link", "set", k.vethKernel, "up")
	// The stack's namespace kernel must stay quiet on the stack's wire.
	runCmd(t, "ip", "netns", "exec", k.nsStack, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1")
	runCmd(t, "ip", "-n", k.nsStack, "link", "set", k.vethStack, "address", stackMAC.String())
	runCmd(t, "ip", "-n", k.nsStack, "link", "set", k.vethStack, "up")
	return k
}

// The kernel pings the stack: ARP and ICMP echo, then 4000-byte pings that
// the kernel fragments, the stack reassembles, answers, and fragments back.
func TestKernelPing(t *testing.T) {
	stackMAC := header.MAC{0x02, 0x13, 0, 0, 7, 2}
	k := newKernelPeer(t, "10.213.7.1/24", stackMAC)
	ep, err := afpacket.New(afpacket.Config{Interface: k.vethStack, NetNS: "/run/netns/" + k.nsStack})
	if err != nil {
		t.Fatalf("afpacket: %v", err)
	}
	s := stack.New(stack.Options{})
	arpProto := arp.Register(s)
	Register(s, DefaultConfig())
	udp := &fakeTransport{num: header.ProtoUDP}
	s.RegisterTransportProtocol(udp)
	nic, err := s.AddNIC(ep, stack.NICOptions{Name: "eth0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if err := nic.AddAddress(netip.MustParsePrefix("10.213.7.2/24")); err != nil {
		t.Fatal(err)
	}

	out := runCmd(t, "ip", "netns", "exec", k.nsKernel, "ping", "-n", "-c", "3", "-i", "0.2", "-W", "2", "10.213.7.2")
	if !strings.Contains(out, "3 received") {
		t.Fatalf("ping output:\n%s", out)
	}
	neigh := runCmd(t, "ip", "-n", k.nsKernel, "neigh", "show", "10.213.7.2")
	if !strings.Contains(neigh, stackMAC.String()) {
		t.Fatalf("kernel neighbour entry %q lacks the stack's MAC %v", neigh, stackMAC)
	}
	if e, ok := arpProto.Table(nic.ID()).Lookup(netip.MustParseAddr("10.213.7.1")); !ok || !e.State.Valid() {
		t.Fatalf("stack did not learn the kernel's address: %+v %v", e, ok)
	}

	out = runCmd(t, "ip", "netns", "exec", k.nsKernel, "ping", "-n", "-c", "2", "-i", "0.2", "-W", "2", "-s", "4000", "10.213.7.2")
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
	deadline := time.Now().Add(5 * time.Second)
	for {
		udp.mu.Lock()
		n := len(udp.errors)
		udp.mu.Unlock()
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no ICMP port unreachable from the kernel within 5 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	udp.mu.Lock()
	e := udp.errors[0]
	udp.mu.Unlock()
	if e.err.Kind != stack.ICMPPortUnreachable || e.info.Src != r.LocalAddr || e.info.Dst != kernelAddr ||
		!bytes.Equal(e.payload[:len(dgram)], dgram) {
		t.Fatalf("kernel's error delivered as %+v %+v %x", e.err, e.info, e.payload)
	}
}

// waitErrors waits (bounded) until the transport has recorded n errors.
func waitErrors(t *testing.T, tp *fakeTransport, n int) []deliveredError {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		tp.mu.Lock()
		got := append([]deliveredError(nil), tp.errors...)
		tp.mu.Unlock()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d ICMP errors delivered within 5 s, want %d", len(got), n)
		}
		time.Sleep(5 * time.Millisecond)
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
	far := k.nsKernel[:len(k.nsKernel)-1] + "f"
	runCmd(t, "ip", "netns", "add", far)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", far).Run() })
	vr, vf := k.vethKernel[:len(k.vethKernel)-1]+"c", k.vethKernel[:len(k.vethKernel)-1]+"d"
	runCmd(t, "ip", "link", "add", vr, "netns", k.nsKernel, "mtu", "1300", "type", "veth", "peer", "name", vf, "netns", far, "mtu", "1300")
	runCmd(t, "ip", "-n", k.nsKernel, "addr", "add", "10.213.6.1/24", "dev", vr)
	runCmd(t, "ip", "-n", k.nsKernel, "link", "set", vr, "up")
	runCmd(t, "ip", "netns", "exec", k.nsKernel, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	runCmd(t, "ip", "-n", far, "addr", "add", "10.213.6.2/24", "dev", vf)
	runCmd(t, "ip", "-n", far, "link", "set", vf, "up")
	runCmd(t, "ip", "-n", far, "route", "add", "default", "via", "10.213.6.1")

	ep, err := afpacket.New(afpacket.Config{Interface: k.vethStack, NetNS: "/run/netns/" + k.nsStack})
	if err != nil {
		t.Fatalf("afpacket: %v", err)
	}
	s := stack.New(stack.Options{})
	arp.Register(s)
	ip := Register(s, DefaultConfig())
	udp := &fakeTransport{num: header.ProtoUDP}
	s.RegisterTransportProtocol(udp)
	nic, err := s.AddNIC(ep, stack.NICOptions{Name: "eth0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if err := nic.AddAddress(netip.MustParsePrefix("10.213.7.2/24")); err != nil {
		t.Fatal(err)
	}
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
