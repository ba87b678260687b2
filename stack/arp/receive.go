package arp

import (
	"net/netip"

	"github.com/netprov/netprov/stack/buffer"
	"github.com/netprov/netprov/stack/header"
	"github.com/netprov/netprov/stack/neighbor"
)

// HandlePacket implements stack.NetworkEndpoint: Linux's arp_rcv and
// arp_process.
func (e *Endpoint) HandlePacket(pkt *buffer.Packet) {
	defer pkt.Release()
	if e.table == nil {
		return
	}
	f, err := header.ParseARP(pkt.Data())
	if err != nil {
		e.malformed()
		return
	}
	if f.Op != header.ARPRequest && f.Op != header.ARPReply {
		e.malformed()
		return
	}
	sip, tip := f.SenderIP, f.TargetIP
	// arp_process: no multicast or loopback targets, no multicast senders;
	// a sender using our own MAC is a reflection of our own frame.
	if tip.IsMulticast() || tip.IsLoopback() || sip.IsMulticast() || f.SenderMAC.IsMulticast() ||
		f.SenderMAC == e.nic.LinkAddress() {
		return
	}
	if f.Op == header.ARPRequest {
		e.stats.RequestsReceived.Add(1)
	} else {
		e.stats.RepliesReceived.Add(1)
	}
	local := e.p.s.IsLocalAddress(tip)

	// Duplicate address detection probe (RFC 5227): answer, learn nothing.
	if sip.IsUnspecified() {
		if f.Op == header.ARPRequest && local {
			e.reply(f.SenderMAC, tip, f.SenderMAC, sip)
		}
		return
	}
	if f.Op == header.ARPRequest && local {
		// arp_ignore=0: any local address is answered; the asker is
		// learned as STALE (neigh_event_ns).
		e.table.HandleProbe(sip, f.SenderMAC)
		e.reply(f.SenderMAC, tip, f.SenderMAC, sip)
		return
	}

	// Anything else only refreshes an existing entry (arp_accept=0).
	isGARP := sip == tip && (f.Op == header.ARPRequest || f.TargetMAC == header.BroadcastMAC || f.TargetMAC == f.SenderMAC)
	state := neighbor.Reachable
	// Broadcast replies and requests do not prove reachability.
	if f.Op != header.ARPReply || pkt.Meta.LinkBroadcast {
		state = neighbor.Stale
	}
	flags := neighbor.OverrideIfUnlocked
	if isGARP {
		flags = neighbor.Override
	}
	e.table.Update(sip, f.SenderMAC, state, flags)
}

// reply sends an ARP reply from the local address sip to (tha, tip).
func (e *Endpoint) reply(dst header.MAC, sip netip.Addr, tha header.MAC, tip netip.Addr) {
	e.send(dst, header.ARPFields{
		Op:        header.ARPReply,
		SenderMAC: e.nic.LinkAddress(),
		SenderIP:  sip,
		TargetMAC: tha,
		TargetIP:  tip,
	})
	e.stats.RepliesSent.Add(1)
}

func (e *Endpoint) malformed() {
	e.stats.Malformed.Add(1)
	e.p.s.Stats().Dropped.MalformedARP.Add(1)
}
