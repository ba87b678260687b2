package stack

import (
	"bytes"
	"errors"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/netprov/netprov/stack/buffer"
	"github.com/netprov/netprov/stack/header"
	"github.com/netprov/netprov/stack/link"
	"golang.org/x/sys/unix"
)

// frameLink is a link endpoint for packet-level tests: it records written
// frames; tests inject received frames through the NIC.
type frameLink struct {
	mtu  int
	mac  header.MAC
	caps link.Capabilities

	mu      sync.Mutex
	written [][]byte
}

func (l *frameLink) MTU() int                        { return l.mtu }
func (l *frameLink) LinkAddress() header.MAC         { return l.mac }
func (l *frameLink) Capabilities() link.Capabilities { return l.caps }
func (l *frameLink) Attach(link.Dispatcher)          {}
func (l *frameLink) Close() error                    { return nil }
func (l *frameLink) WritePackets(pkts []*buffer.Packet) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, p := range pkts {
		l.written = append(l.written, bytes.Clone(p.Data()))
		p.Release()
	}
	return len(pkts), nil
}

// recordingProtocol is a network protocol that records what the NIC hands
// it and can write packets as a PacketWriter.
type recordingProtocol struct {
	etherType uint16
	got       []buffer.Meta
	payloads  [][]byte
}

func (p *recordingProtocol) EtherType() uint16 { return p.etherType }
func (p *recordingProtocol) NewEndpoint(*NIC) NetworkEndpoint {
	return (*recordingEndpoint)(p)
}

type recordingEndpoint recordingProtocol

func (e *recordingEndpoint) HandlePacket(pkt *buffer.Packet) {
	e.got = append(e.got, pkt.Meta)
	e.payloads = append(e.payloads, bytes.Clone(pkt.Data()))
	pkt.Release()
}
func (e *recordingEndpoint) Close() {}
func (e *recordingEndpoint) WritePacket(r *Route, pkt *buffer.Packet, _ NetworkParams) error {
	return r.NIC.WriteFrame(header.BroadcastMAC, e.etherType, pkt)
}

var nicMAC = header.MAC{0x02, 0, 0, 0, 0, 1}

func newTestStack(t *testing.T) (*Stack, *recordingProtocol, *NIC, *frameLink) {
	t.Helper()
	s := New(Options{})
	v4 := &recordingProtocol{etherType: header.EtherTypeIPv4}
	s.RegisterNetworkProtocol(v4)
	s.RegisterNetworkProtocol(&recordingProtocol{etherType: header.EtherTypeIPv6})
	l := &frameLink{mtu: 1500, mac: nicMAC, caps: link.CapEthernet}
	nic, err := s.AddNIC(l, NICOptions{Name: "eth0"})
	if err != nil {
		t.Fatal(err)
	}
	lo, err := s.AddNIC(&frameLink{mtu: 65536, caps: link.CapLoopback}, NICOptions{Name: "lo"})
	if err != nil {
		t.Fatal(err)
	}
	mustAdd(t, lo, "127.0.0.1/8")
	mustAdd(t, lo, "::1/128")
	return s, v4, nic, l
}

func mustAdd(t *testing.T, n *NIC, cidr string) {
	t.Helper()
	if err := n.AddAddress(netip.MustParsePrefix(cidr)); err != nil {
		t.Fatalf("AddAddress(%s): %v", cidr, err)
	}
}

func frame(dst header.MAC, etherType uint16, payload string) *buffer.Packet {
	b := make([]byte, header.EthernetLen+len(payload))
	header.EthernetFields{Dst: dst, Src: header.MAC{2, 9, 9, 9, 9, 9}, EtherType: etherType}.Emit(b)
	copy(b[header.EthernetLen:], payload)
	return buffer.FromBytes(b)
}

func TestNICDispatchesByEtherTypeAndFiltersByMAC(t *testing.T) {
	_, v4, nic, _ := newTestStack(t)
	nic.DeliverLinkPacket(frame(nicMAC, header.EtherTypeIPv4, "unicast"))
	nic.DeliverLinkPacket(frame(header.BroadcastMAC, header.EtherTypeIPv4, "bcast"))
	nic.DeliverLinkPacket(frame(header.MAC{2, 1, 1, 1, 1, 1}, header.EtherTypeIPv4, "other"))
	nic.DeliverLinkPacket(frame(nicMAC, 0x88cc, "lldp"))
	nic.DeliverLinkPacket(buffer.FromBytes([]byte{1, 2, 3}))

	if len(v4.payloads) != 2 || string(v4.payloads[0]) != "unicast" || string(v4.payloads[1]) != "bcast" {
		t.Fatalf("IPv4 got %q, want [unicast bcast]", v4.payloads)
	}
	if v4.got[0].LinkBroadcast || !v4.got[1].LinkBroadcast {
		t.Errorf("LinkBroadcast flags = %v,%v, want false,true", v4.got[0].LinkBroadcast, v4.got[1].LinkBroadcast)
	}
	if v4.got[0].NIC != nic.ID() {
		t.Errorf("Meta.NIC = %d, want %d", v4.got[0].NIC, nic.ID())
	}
	if got := nic.Stats.NotForUs.Load(); got != 1 {
		t.Errorf("NotForUs = %d, want 1", got)
	}
	if got := nic.Stats.UnknownEtherType.Load(); got != 1 {
		t.Errorf("UnknownEtherType = %d, want 1", got)
	}
	if got := nic.Stats.MalformedFrames.Load(); got != 1 {
		t.Errorf("MalformedFrames = %d, want 1", got)
	}
}

func TestWriteFrameAddsEthernetHeader(t *testing.T) {
	s, _, nic, l := newTestStack(t)
	mustAdd(t, nic, "10.213.0.2/24")
	r, err := s.FindRoute(0, netip.Addr{}, netip.MustParseAddr("10.213.0.9"))
	if err != nil {
		t.Fatal(err)
	}
	pkt := buffer.New(buffer.Headroom, 3)
	copy(pkt.Append(3), "abc")
	if err := r.WritePacket(pkt, NetworkParams{}); err != nil {
		t.Fatal(err)
	}
	if len(l.written) != 1 {
		t.Fatalf("wrote %d frames, want 1", len(l.written))
	}
	f, err := header.ParseEthernet(l.written[0])
	if err != nil || f.Src != nicMAC || f.Dst != header.BroadcastMAC || f.EtherType != header.EtherTypeIPv4 {
		t.Fatalf("ethernet header = %+v, %v", f, err)
	}
	if string(l.written[0][header.EthernetLen:]) != "abc" {
		t.Fatalf("payload = %q", l.written[0][header.EthernetLen:])
	}
}

func TestFindRouteLongestPrefixMatch(t *testing.T) {
	s, _, nic, _ := newTestStack(t)
	mustAdd(t, nic, "10.213.0.2/24")
	gw1, gw2 := netip.MustParseAddr("10.213.0.1"), netip.MustParseAddr("10.213.0.254")
	s.AddRoute(RouteEntry{Dst: netip.MustParsePrefix("0.0.0.0/0"), Gateway: gw1, NIC: nic.ID()})
	s.AddRoute(RouteEntry{Dst: netip.MustParsePrefix("192.0.2.0/24"), Gateway: gw2, NIC: nic.ID(), MTU: 1400, AdvMSS: 1300})

	cases := []struct {
		dst, nextHop string
		mtu          int
	}{
		{"10.213.0.77", "10.213.0.77", 1500}, // connected subnet
		{"192.0.2.5", "10.213.0.254", 1400},  // /24 beats the default route
		{"198.51.100.1", "10.213.0.1", 1500}, // default route
	}
	for _, c := range cases {
		r, err := s.FindRoute(0, netip.Addr{}, netip.MustParseAddr(c.dst))
		if err != nil {
			t.Fatalf("FindRoute(%s): %v", c.dst, err)
		}
		if r.NextHop.String() != c.nextHop || r.MTU != c.mtu || r.LocalAddr.String() != "10.213.0.2" {
			t.Errorf("FindRoute(%s) = next hop %v mtu %d src %v, want %s %d 10.213.0.2", c.dst, r.NextHop, r.MTU, r.LocalAddr, c.nextHop, c.mtu)
		}
	}
	r, _ := s.FindRoute(0, netip.Addr{}, netip.MustParseAddr("192.0.2.5"))
	if r.DefaultMSS() != 1300 {
		t.Errorf("advmss route MSS = %d, want 1300", r.DefaultMSS())
	}
	r, _ = s.FindRoute(0, netip.Addr{}, netip.MustParseAddr("10.213.0.77"))
	if r.DefaultMSS() != 1460 {
		t.Errorf("MSS on a 1500 MTU route = %d, want 1460 (spec 35)", r.DefaultMSS())
	}
}

func TestFindRouteErrorsAndLocalDestinations(t *testing.T) {
	s, _, nic, _ := newTestStack(t)
	mustAdd(t, nic, "10.213.0.2/24")
	// No default route: ENETUNREACH and OutNoRoutes (spec 16).
	if _, err := s.FindRoute(0, netip.Addr{}, netip.MustParseAddr("198.51.100.1")); !errors.Is(err, unix.ENETUNREACH) {
		t.Fatalf("no route: err = %v, want ENETUNREACH", err)
	}
	if s.Stats().IP.OutNoRoutes.Load() != 1 {
		t.Errorf("OutNoRoutes = %d, want 1", s.Stats().IP.OutNoRoutes.Load())
	}
	// A source address the host does not have.
	if _, err := s.FindRoute(0, netip.MustParseAddr("10.213.0.3"), netip.MustParseAddr("10.213.0.9")); !errors.Is(err, unix.EADDRNOTAVAIL) {
		t.Fatalf("foreign source: err = %v, want EADDRNOTAVAIL", err)
	}
	// Our own address goes through loopback, with itself as source.
	r, err := s.FindRoute(0, netip.Addr{}, netip.MustParseAddr("10.213.0.2"))
	if err != nil || !r.IsLocal() || !r.NIC.IsLoopback() || r.LocalAddr.String() != "10.213.0.2" {
		t.Fatalf("route to own address = %+v, %v", r, err)
	}
	// Any address in 127/8 is local; 0.0.0.0 means this host (spec 17).
	for dst, want := range map[string]string{"127.3.4.5": "127.3.4.5", "0.0.0.0": "127.0.0.1", "::": "::1"} {
		r, err := s.FindRoute(0, netip.Addr{}, netip.MustParseAddr(dst))
		if err != nil || !r.IsLocal() || r.RemoteAddr.String() != want {
			t.Errorf("FindRoute(%s) = %v, %v; want local route to %s", dst, r, err, want)
		}
	}
	// Broadcast and multicast are flagged for the transports to judge.
	r, err = s.FindRoute(0, netip.Addr{}, netip.MustParseAddr("10.213.0.255"))
	if err != nil || r.Flags&RouteBroadcast == 0 {
		t.Errorf("subnet broadcast route = %+v, %v; want RouteBroadcast", r, err)
	}
}

func TestSourceAddressScope(t *testing.T) {
	_, _, nic, _ := newTestStack(t)
	mustAdd(t, nic, "fd00:213::2/64")
	mustAdd(t, nic, "fe80::2/64")
	for dst, want := range map[string]string{
		"ff02::1":      "fe80::2",     // link-scope multicast: link-local source
		"fe80::9":      "fe80::2",     // link-local unicast
		"ff0e::1":      "fd00:213::2", // global multicast
		"2001:db8::1":  "fd00:213::2", // off-link global
		"fd00:213::77": "fd00:213::2", // on-link
	} {
		got, ok := nic.PrimaryAddress(netip.MustParseAddr(dst))
		if !ok || got.String() != want {
			t.Errorf("PrimaryAddress(%s) = %v, want %s", dst, got, want)
		}
	}
}

func TestAddressErrors(t *testing.T) {
	s, _, nic, _ := newTestStack(t)
	mustAdd(t, nic, "10.213.0.2/24")
	if err := nic.AddAddress(netip.MustParsePrefix("10.213.0.2/16")); !errors.Is(err, unix.EEXIST) {
		t.Errorf("duplicate address: %v, want EEXIST", err)
	}
	if err := nic.RemoveAddress(netip.MustParseAddr("10.213.0.3")); !errors.Is(err, unix.EADDRNOTAVAIL) {
		t.Errorf("removing a missing address: %v, want EADDRNOTAVAIL", err)
	}
	if err := nic.RemoveAddress(netip.MustParseAddr("10.213.0.2")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.FindRoute(0, netip.Addr{}, netip.MustParseAddr("10.213.0.9")); !errors.Is(err, unix.ENETUNREACH) {
		t.Errorf("connected route survived address removal: %v", err)
	}
	if err := s.RemoveRoute(netip.MustParsePrefix("10.9.0.0/16"), netip.Addr{}, 0); !errors.Is(err, unix.ESRCH) {
		t.Errorf("removing a missing route: %v, want ESRCH", err)
	}
}

func TestSecondAddressInSubnetKeepsConnectedRoute(t *testing.T) {
	s, _, nic, _ := newTestStack(t)
	mustAdd(t, nic, "10.213.0.2/24")
	mustAdd(t, nic, "10.213.0.3/24")
	dst := netip.MustParseAddr("10.213.0.9")
	if r, err := s.FindRoute(0, netip.Addr{}, dst); err != nil || r.LocalAddr.String() != "10.213.0.2" {
		t.Fatalf("route with two addresses = %v, %v; want source 10.213.0.2 (primary)", r, err)
	}
	if err := nic.RemoveAddress(netip.MustParseAddr("10.213.0.3")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.FindRoute(0, netip.Addr{}, dst); err != nil {
		t.Fatalf("removing the secondary address removed the subnet route: %v", err)
	}
	if err := nic.RemoveAddress(netip.MustParseAddr("10.213.0.2")); err != nil {
		t.Fatal(err)
	}
	mustAdd(t, nic, "10.213.0.4/24")
	mustAdd(t, nic, "10.213.0.5/24")
	if err := nic.RemoveAddress(netip.MustParseAddr("10.213.0.4")); err != nil {
		t.Fatal(err)
	}
	if r, err := s.FindRoute(0, netip.Addr{}, dst); err != nil || r.LocalAddr.String() != "10.213.0.5" {
		t.Fatalf("after removing the primary: %v, %v; want source 10.213.0.5", r, err)
	}
}

func TestNICNamesAreUnique(t *testing.T) {
	s, _, _, _ := newTestStack(t)
	if _, err := s.AddNIC(&frameLink{mtu: 1500}, NICOptions{Name: "eth0"}); err == nil {
		t.Fatal("second NIC named eth0 accepted")
	}
	if n := s.NICByName("lo"); n == nil || !n.IsLoopback() {
		t.Fatal("NICByName(lo) did not find the loopback NIC")
	}
}

func TestWriteSNMP(t *testing.T) {
	var st Stats
	st.TCP.InSegs.Add(5)
	var b strings.Builder
	if err := st.WriteSNMP(&b); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(b.String(), "\n")
	var names, values []string
	for i := 0; i+1 < len(lines); i += 2 {
		if strings.HasPrefix(lines[i], "Tcp:") {
			names, values = strings.Fields(lines[i]), strings.Fields(lines[i+1])
		}
	}
	if len(names) == 0 || len(names) != len(values) {
		t.Fatalf("Tcp lines malformed:\n%s", b.String())
	}
	for i, n := range names {
		if n == "InSegs" && values[i] != "5" {
			t.Fatalf("InSegs = %s, want 5", values[i])
		}
	}
}

// Semantics scenario c-source-address-chosen: an unbound socket connecting
// to 127.0.0.5 gets 127.0.0.1 as its source, the prefsrc of the local
// route "local 127.0.0.0/8 dev lo src 127.0.0.1" (the kernel prints
// sockname=127.0.0.1:EPH peername=127.0.0.5:P0); an assigned address is
// its own source, and an explicit source is kept.
func TestLoopbackRangeSourceIsAssignedAddress(t *testing.T) {
	s, _, nic, _ := newTestStack(t)
	mustAdd(t, nic, "10.213.0.2/24")
	for _, c := range []struct{ local, remote, want string }{
		{"", "127.0.0.5", "127.0.0.1"},
		{"", "127.0.0.1", "127.0.0.1"},
		{"", "10.213.0.2", "10.213.0.2"},
		{"127.0.0.1", "127.0.0.1", "127.0.0.1"},
	} {
		var local netip.Addr
		if c.local != "" {
			local = netip.MustParseAddr(c.local)
		}
		r, err := s.FindRoute(0, local, netip.MustParseAddr(c.remote))
		if err != nil || !r.IsLocal() || r.LocalAddr.String() != c.want || r.RemoteAddr.String() != c.remote {
			t.Errorf("FindRoute(%q, %s) = %+v, %v; want local route from %s", c.local, c.remote, r, err, c.want)
		}
	}
}

// Semantics scenario r-bound-to-loopback-cannot-reach-peer: a route from
// a loopback source out of a non-loopback device is EINVAL
// (__mkroute_output), so connect from a socket bound to 127.0.0.1 to a
// peer on the network fails with EINVAL (the kernel prints
// connect=EINVAL); without the bound source the route is fine.
func TestLoopbackSourceCannotLeave(t *testing.T) {
	s, _, nic, _ := newTestStack(t)
	mustAdd(t, nic, "10.213.0.2/24")
	peer := netip.MustParseAddr("10.213.0.9")
	if _, err := s.FindRoute(0, netip.MustParseAddr("127.0.0.1"), peer); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("route from 127.0.0.1 to %v: err = %v, want EINVAL", peer, err)
	}
	r, err := s.FindRoute(0, netip.Addr{}, peer)
	if err != nil || r.LocalAddr.String() != "10.213.0.2" {
		t.Fatalf("route to %v = %+v, %v", peer, r, err)
	}
}
