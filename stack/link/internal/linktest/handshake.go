package linktest

import (
	"net/netip"
	"testing"
	"time"

	"github.com/netprov/netprov/stack/buffer"
	"github.com/netprov/netprov/stack/header"
	"github.com/netprov/netprov/stack/link"
)

// Write sends frames through ep and fails the test unless all were sent.
func Write(t testing.TB, ep link.Endpoint, frames ...[]byte) {
	t.Helper()
	pkts := make([]*buffer.Packet, len(frames))
	for i, f := range frames {
		pkts[i] = buffer.FromBytes(f)
	}
	n, err := ep.WritePackets(pkts)
	if err != nil || n != len(frames) {
		t.Fatalf("WritePackets = %d, %v; want %d, nil", n, err, len(frames))
	}
}

// TCPHandshake opens a TCP connection by hand from local:sport (MAC
// ep.LinkAddress()) to a kernel listening on remote:dport (MAC peerMAC),
// without options (so the kernel uses MSS 536 and no window scaling). It
// returns the kernel's initial sequence number.
func TCPHandshake(t testing.TB, ep link.Endpoint, rec *Recorder, peerMAC header.MAC, local, remote netip.Addr, sport, dport uint16) uint32 {
	t.Helper()
	mac := ep.LinkAddress()
	const iss = 1000
	Write(t, ep, TCPv4Frame(peerMAC, mac, local, remote, sport, dport, iss, 0, TCPSyn, nil, false))
	synAck := rec.WaitFor(t, 5*time.Second, "SYN-ACK", func(f Frame) bool {
		s, ok := ParseTCPv4Frame(f.Data)
		return ok && s.Dport == sport && s.Flags&(TCPSyn|TCPAck) == TCPSyn|TCPAck
	})
	sa, _ := ParseTCPv4Frame(synAck.Data)
	if sa.Ack != iss+1 {
		t.Fatalf("SYN-ACK acknowledges %d, want %d", sa.Ack, iss+1)
	}
	Write(t, ep, TCPv4Frame(peerMAC, mac, local, remote, sport, dport, iss+1, sa.Seq+1, TCPAck, nil, false))
	return sa.Seq
}
