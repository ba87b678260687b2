// Package arp is the Address Resolution Protocol (RFC 826, EtherType
// 0x0806) for IPv4 over Ethernet. Its per-NIC endpoint owns the NIC's IPv4
// neighbour table: stack/ipv4 finds it with
//
//	nic.NetworkEndpoint(header.EtherTypeARP).(*arp.Endpoint).Table()
//
// and sends through Table.Output. Behaviour follows Linux's arp_process
// with the default sysctls: arp_ignore=0 (answer for any local address),
// arp_accept=0 (unsolicited replies do not create entries), arp_announce=0.
package arp

import (
	"net/netip"
	"sync"

	"github.com/netprov/netprov/stack"
	"github.com/netprov/netprov/stack/buffer"
	"github.com/netprov/netprov/stack/header"
	"github.com/netprov/netprov/stack/link"
	"github.com/netprov/netprov/stack/neighbor"
)

// Config holds ARP's settings: the neighbour table's
// (net.ipv4.neigh.default.*) and the per-interface ARP sysctls.
type Config struct {
	Neighbor neighbor.Config
	// Notify is arp_notify: announce addresses with gratuitous ARP. Linux
	// sends them when the link comes up; the stack's links are always up,
	// so it sends one when an address is added. Off by default, as on
	// Linux (`ip addr add` sends no ARP with arp_notify=0).
	Notify bool
}

// DefaultConfig returns Linux's defaults.
func DefaultConfig() Config {
	return Config{Neighbor: neighbor.DefaultConfig()}
}

// Protocol is ARP registered on one stack.
type Protocol struct {
	s   *stack.Stack
	cfg Config

	mu  sync.RWMutex
	eps map[int]*Endpoint
}

var _ stack.NetworkProtocol = (*Protocol)(nil)

// Register adds ARP to s with Linux's defaults.
func Register(s *stack.Stack) *Protocol {
	return RegisterConfig(s, DefaultConfig())
}

// RegisterConfig adds ARP to s with the given settings. The table
// counters always go to s.Stats().ARP.
func RegisterConfig(s *stack.Stack, cfg Config) *Protocol {
	cfg.Neighbor.Stats = &s.Stats().ARP
	p := &Protocol{s: s, cfg: cfg, eps: make(map[int]*Endpoint)}
	s.RegisterNetworkProtocol(p)
	return p
}

// EtherType implements stack.NetworkProtocol.
func (p *Protocol) EtherType() uint16 { return header.EtherTypeARP }

// NewEndpoint implements stack.NetworkProtocol.
func (p *Protocol) NewEndpoint(nic *stack.NIC) stack.NetworkEndpoint {
	e := &Endpoint{p: p, nic: nic, stats: &p.s.Stats().ARP}
	if nic.Capabilities()&link.CapEthernet != 0 {
		e.table = neighbor.NewTable(p.cfg.Neighbor, p.s.Clock(), e, e.sendIPv4)
	}
	p.mu.Lock()
	p.eps[nic.ID()] = e
	p.mu.Unlock()
	return e
}

// Endpoint returns the ARP endpoint of the NIC with the given id, or nil.
func (p *Protocol) Endpoint(nicID int) *Endpoint {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.eps[nicID]
}

// Table returns the IPv4 neighbour table of the NIC with the given id, or
// nil (no such NIC, or a link without Ethernet addressing).
func (p *Protocol) Table(nicID int) *neighbor.Table {
	if e := p.Endpoint(nicID); e != nil {
		return e.table
	}
	return nil
}

// Endpoint is ARP on one NIC.
type Endpoint struct {
	p     *Protocol
	nic   *stack.NIC
	stats *stack.NeighborStats
	// table is nil on links without Ethernet addressing (loopback).
	table *neighbor.Table
}

var (
	_ stack.NetworkEndpoint = (*Endpoint)(nil)
	_ stack.AddressObserver = (*Endpoint)(nil)
	_ neighbor.Prober       = (*Endpoint)(nil)
)

// Table returns the NIC's IPv4 neighbour table (nil on non-Ethernet links).
func (e *Endpoint) Table() *neighbor.Table { return e.table }

// sendIPv4 is the table's output function: an IPv4 packet to a resolved
// neighbour.
func (e *Endpoint) sendIPv4(mac header.MAC, pkt *buffer.Packet) {
	// A link error is counted by the NIC (TxErrors); like dev_queue_xmit
	// for a queued packet there is nobody left to tell.
	_ = e.nic.WriteFrame(mac, header.EtherTypeIPv4, pkt)
}

// Probe implements neighbor.Prober: it sends an ARP request for target,
// broadcast or unicast to the cached address. The sender address is the
// NIC's address on target's subnet (inet_select_addr).
func (e *Endpoint) Probe(target netip.Addr, unicast *header.MAC) {
	src, _ := e.nic.PrimaryAddress(target)
	if !src.IsValid() {
		src = netip.IPv4Unspecified()
	}
	dst := header.BroadcastMAC
	if unicast != nil {
		dst = *unicast
	}
	e.send(dst, header.ARPFields{
		Op:        header.ARPRequest,
		SenderMAC: e.nic.LinkAddress(),
		SenderIP:  src,
		TargetIP:  target,
	})
	e.stats.RequestsSent.Add(1)
}

// AddressAdded implements stack.AddressObserver: with Config.Notify it
// announces a new IPv4 address with a gratuitous ARP request (sender and
// target IP both the new address), as inetdev_send_gratuitous_arp does.
func (e *Endpoint) AddressAdded(p netip.Prefix) {
	if e.p.cfg.Notify {
		e.announce(p.Addr())
	}
}

// Announce sends a gratuitous ARP request for each IPv4 address of the
// NIC, whatever Config.Notify says (`arping -U`): for a link whose far side
// came up after the addresses were added, such as a TAP attached to a
// bridge once the stack runs, so that neighbours holding a stale entry for
// a reused address learn the new MAC (Linux updates an existing entry from
// a gratuitous ARP even with arp_accept=0).
func (e *Endpoint) Announce() {
	for _, p := range e.nic.Addresses() {
		e.announce(p.Addr())
	}
}

// announce is inetdev_send_gratuitous_arp for one address.
func (e *Endpoint) announce(a netip.Addr) {
	if e.table == nil || !a.Is4() || a.IsLoopback() {
		return
	}
	e.send(header.BroadcastMAC, header.ARPFields{
		Op:        header.ARPRequest,
		SenderMAC: e.nic.LinkAddress(),
		SenderIP:  a,
		TargetIP:  a,
	})
	e.stats.RequestsSent.Add(1)
}

func (e *Endpoint) send(dst header.MAC, f header.ARPFields) {
	pkt := buffer.New(header.EthernetLen, header.ARPLen)
	f.Emit(pkt.Append(header.ARPLen))
	_ = e.nic.WriteFrame(dst, header.EtherTypeARP, pkt)
}

// Close implements stack.NetworkEndpoint.
func (e *Endpoint) Close() {
	if e.table != nil {
		e.table.Close()
	}
	e.p.mu.Lock()
	if e.p.eps[e.nic.ID()] == e {
		delete(e.p.eps, e.nic.ID())
	}
	e.p.mu.Unlock()
}
