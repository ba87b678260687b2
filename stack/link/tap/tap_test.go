package tap

import (
	"errors"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/integration/netns"
	"github.com/netprov/netprov/stack/buffer"
	"github.com/netprov/netprov/stack/header"
	"github.com/netprov/netprov/stack/link"
	lt "github.com/netprov/netprov/stack/link/internal/linktest"
)

var (
	kernelIP = netip.MustParseAddr("10.213.77.1")
	stackIP  = netip.MustParseAddr("10.213.77.2")
)

// newTAP creates a TAP in a fresh namespace, gives its kernel side
// 10.213.77.1/24 and brings it up.
func newTAP(t *testing.T, vnetHdr bool) (*Endpoint, *netns.NS, *lt.Recorder) {
	t.Helper()
	lt.RequireRoot(t)
	ns := netns.New(t, "")
	ep, err := New(Config{Name: netns.UniqueName("t"), NetNS: ns.Path(), VnetHdr: vnetHdr})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { ep.Close() })
	ns.AddAddr(t, ep.Name(), kernelIP.String()+"/24")
	ns.LinkUp(t, ep.Name())
	ns.WaitOperUp(t, ep.Name())
	rec := lt.NewRecorder()
	ep.Attach(rec)
	return ep, ns, rec
}

func testARPExchange(t *testing.T, vnetHdr bool) {
	ep, ns, rec := newTAP(t, vnetHdr)
	if out, err := exec.Command("ip", "link", "show", ep.Name()).CombinedOutput(); err == nil {
		t.Fatalf("TAP %s visible outside its namespace:\n%s", ep.Name(), out)
	}
	if ep.MTU() != DefaultMTU || !strings.Contains(string(ns.IP(t, "link", "show", ep.Name())), "mtu 1500") {
		t.Fatalf("MTU %d / kernel side not 1500", ep.MTU())
	}
	mac := ep.LinkAddress()
	if mac[0]&0x03 != 0x02 {
		t.Fatalf("default MAC %v is not locally administered unicast", mac)
	}
	lt.Write(t, ep, lt.ARPFrame(header.BroadcastMAC, lt.ARPRequest, mac, stackIP, header.MAC{}, kernelIP))
	f := rec.WaitFor(t, 5*time.Second, "ARP reply from the kernel", func(f lt.Frame) bool {
		a, ok := lt.ParseARPFrame(f.Data)
		return ok && a.Op == lt.ARPReply && a.SPA == kernelIP && a.TPA == stackIP && a.THA == mac
	})
	if dst := header.Ethernet(f.Data).Dst(); dst != mac {
		t.Fatalf("ARP reply sent to %v, want %v", dst, mac)
	}
	// The request the stack wrote taught the kernel the stack's MAC.
	if neigh := string(ns.IP(t, "neigh", "show", stackIP.String(), "dev", ep.Name())); !strings.Contains(neigh, mac.String()) {
		t.Fatalf("kernel neighbour table has no %v for %v:\n%s", mac, stackIP, neigh)
	}
	st := ep.Stats()
	if st.TxPackets != 1 || st.TxBytes != 60 || st.RxPackets == 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestTAPKernelAnswersARP(t *testing.T)        { testARPExchange(t, false) }
func TestTAPVnetHdrKernelAnswersARP(t *testing.T) { testARPExchange(t, true) }

// TestTAPVnetHdrSuperSegment writes one 4000-byte TCP super-segment with
// only the pseudo-header checksum. The kernel accepts it (a bad checksum
// would be dropped silently) and, having no socket, answers with a RST
// whose ACK covers all 4000 bytes.
func TestTAPVnetHdrSuperSegment(t *testing.T) {
	ep, ns, rec := newTAP(t, true)
	if ep.Capabilities() != link.CapEthernet|link.CapGSO|link.CapTXChecksumOffload {
		t.Fatalf("caps %b", ep.Capabilities())
	}
	mac := ep.LinkAddress()
	// Teach the kernel our MAC so its RST needs no ARP round trip.
	ns.IP(t, "neigh", "replace", stackIP.String(), "lladdr", mac.String(), "dev", ep.Name())
	kmac := lt.KernelMAC(t, ns, ep.Name())
	payload := make([]byte, 4000)
	for i := range payload {
		payload[i] = byte(i)
	}
	const seq = 1000000
	p := buffer.FromBytes(lt.TCPv4Frame(kmac, mac, stackIP, kernelIP, 40000, 9, seq, 0, lt.TCPPsh, payload, true))
	p.Meta.GSO = buffer.GSO{Type: buffer.GSOTCPv4, HeaderLen: 40, MSS: 1000, NeedsCsum: true, CsumOffset: 16}
	if n, err := ep.WritePackets([]*buffer.Packet{p}); n != 1 || err != nil {
		t.Fatalf("WritePackets = %d, %v", n, err)
	}
	rec.WaitFor(t, 5*time.Second, "RST acknowledging the whole super-segment", func(f lt.Frame) bool {
		s, ok := lt.ParseTCPv4Frame(f.Data)
		return ok && s.Flags&lt.TCPRst != 0 && s.Dport == 40000 && s.Ack == seq+4000
	})
}

// TestTAPDropsOversizeWithoutGSO checks that a frame above the MTU is
// dropped and counted, not written.
func TestTAPDropsOversizeWithoutGSO(t *testing.T) {
	ep, _, _ := newTAP(t, false)
	big := buffer.New(0, 1515)
	big.Append(1515)
	n, err := ep.WritePackets([]*buffer.Packet{big})
	if n != 0 || err != nil || ep.Stats().TxDropped != 1 {
		t.Fatalf("WritePackets = %d, %v, TxDropped %d; want 0, nil, 1", n, err, ep.Stats().TxDropped)
	}
}

func TestTAPCloseRemovesDeviceAndStopsWrites(t *testing.T) {
	ep, ns, _ := newTAP(t, false)
	if err := ep.Close(); err != nil {
		t.Fatal(err)
	}
	if out := string(ns.IP(t, "link", "show")); strings.Contains(out, ep.Name()) {
		t.Fatalf("TAP %s still exists after Close:\n%s", ep.Name(), out)
	}
	n, err := ep.WritePackets([]*buffer.Packet{buffer.FromBytes(make([]byte, 60))})
	if n != 0 || !errors.Is(err, unix.ENETDOWN) {
		t.Fatalf("write after Close = %d, %v", n, err)
	}
}

func TestTAPBadNamespace(t *testing.T) {
	lt.RequireRoot(t)
	_, err := New(Config{Name: netns.UniqueName("t"), NetNS: "/run/netns/np-does-not-exist"})
	if !errors.Is(err, unix.ENOENT) {
		t.Fatalf("New in a missing namespace: %v, want ENOENT", err)
	}
}

// kernelMAC reads the kernel interface's MAC.
// TestTAPWriteDoesNotAllocate checks the steady-state send path with the
// virtio-net header: a batch of pooled frames costs no allocation.
func TestTAPWriteDoesNotAllocate(t *testing.T) {
	if lt.RaceEnabled {
		t.Skip("skipping: allocation counts are meaningless with the race detector")
	}
	ep, _, _ := newTAP(t, true)
	frame := lt.ARPFrame(header.BroadcastMAC, lt.ARPRequest, ep.LinkAddress(), stackIP, header.MAC{}, netip.MustParseAddr("10.213.77.99"))
	pkts := make([]*buffer.Packet, 64)
	allocs := lt.AllocsPerRun(20, func() {
		for i := range pkts {
			p := buffer.New(buffer.Headroom, len(frame))
			copy(p.Append(len(frame)), frame)
			pkts[i] = p
		}
		if n, err := ep.WritePackets(pkts); n != len(pkts) || err != nil {
			t.Fatalf("WritePackets = %d, %v", n, err)
		}
	})
	if allocs >= 1 {
		t.Fatalf("%.1f allocations per batch of 64 frames, want 0", allocs)
	}
}

// TestTAPVnetHdrCoalescedInput opens a TCP connection by hand to a kernel
// server that sends 60000 bytes: with TSO offered by the TAP, the kernel
// hands over super-segments, which arrive whole, marked as GSO with their
// segment size and a checksum that needs no verification.
func TestTAPVnetHdrCoalescedInput(t *testing.T) {
	ep, ns, rec := newTAP(t, true)
	if _, err := exec.LookPath("socat"); err != nil {
		t.Skip("skipping: socat not installed")
	}
	ns.Start(t, "socat", "-u", "OPEN:/dev/zero,readbytes=60000", "TCP-LISTEN:5001,bind="+kernelIP.String())
	ns.WaitListening(t, 5001)
	mac := ep.LinkAddress()
	ns.IP(t, "neigh", "replace", stackIP.String(), "lladdr", mac.String(), "dev", ep.Name())
	kmac := lt.KernelMAC(t, ns, ep.Name())
	const port = 40002
	lt.TCPHandshake(t, ep, rec, kmac, stackIP, kernelIP, port, 5001)
	f := rec.WaitFor(t, 5*time.Second, "TCP super-segment larger than the MTU", func(f lt.Frame) bool {
		s, ok := lt.ParseTCPv4Frame(f.Data)
		return ok && s.Dport == port && len(f.Data) > header.EthernetLen+DefaultMTU
	})
	m := f.Meta
	if m.GSO.Type != buffer.GSOTCPv4 || m.GSO.MSS == 0 || !m.ChecksumVerified {
		t.Fatalf("super-segment of %d bytes has meta %+v", len(f.Data), m)
	}
	t.Logf("received a %d-byte super-segment, MSS %d", len(f.Data), m.GSO.MSS)
}
