package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
	"gvisor.dev/gvisor/pkg/tcpip/link/ethernet"
	"gvisor.dev/gvisor/pkg/tcpip/network/arp"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
)

// netstackNIC is the NIC id used on both gVisor stacks.
const netstackNIC tcpip.NICID = 1

// MACs of the two stacks (the same as netprov's pipe defaults).
const (
	netstackClientMAC = tcpip.LinkAddress("\x02\x00\x00\x00\x00\x01")
	netstackServerMAC = tcpip.LinkAddress("\x02\x00\x00\x00\x00\x02")
)

// netstackNetwork is two gVisor stacks joined by two channel endpoints, one
// goroutine per direction moving frames from one endpoint's outbound queue
// into the other's inbound path (as in gVisor's own in-process TCP
// benchmarks). The link carries Ethernet frames and neighbours are resolved
// with ARP, like netprov's pipe link, so both stacks do the same work per
// packet; ARP resolves once, before anything is measured.
type netstackNetwork struct {
	client, server     *stack.Stack
	clientEP, serverEP *channel.Endpoint
	cancel             context.CancelFunc
	pumps              sync.WaitGroup
}

func newNetstackNetwork(cfg Config) (Network, error) {
	n := &netstackNetwork{}
	var err error
	if n.client, n.clientEP, err = newNetstackStack(cfg, clientAddr, netstackClientMAC); err != nil {
		return nil, fmt.Errorf("netstack client stack: %w", err)
	}
	if n.server, n.serverEP, err = newNetstackStack(cfg, serverAddr, netstackServerMAC); err != nil {
		n.client.Close()
		return nil, fmt.Errorf("netstack server stack: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	n.pumps.Add(2)
	go n.pump(ctx, n.clientEP, n.serverEP)
	go n.pump(ctx, n.serverEP, n.clientEP)
	return n, nil
}

// newNetstackStack builds one stack with IPv4, ARP and TCP on an Ethernet
// endpoint over a channel endpoint, configured from cfg (see DefaultConfig
// for what the values mean).
func newNetstackStack(cfg Config, addr netip.Addr, mac tcpip.LinkAddress) (*stack.Stack, *channel.Endpoint, error) {
	s := stack.New(stack.Options{
		NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol, arp.NewProtocol},
		TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol},
	})
	fail := func(what string, terr tcpip.Error) (*stack.Stack, *channel.Endpoint, error) {
		s.Close()
		return nil, nil, fmt.Errorf("%s: %s", what, terr)
	}
	opts := []struct {
		name string
		opt  tcpip.SettableTransportProtocolOption
	}{
		{"SACK", ptr(tcpip.TCPSACKEnabled(true))},
		{"Nagle", ptr(tcpip.TCPDelayEnabled(true))},
		{"congestion control", ptr(tcpip.CongestionControlOption("cubic"))},
		{"receive buffer moderation", ptr(tcpip.TCPModerateReceiveBufferOption(true))},
		{"receive buffer range", &tcpip.TCPReceiveBufferSizeRangeOption{Min: cfg.RecvBuf.Min, Default: cfg.RecvBuf.Default, Max: cfg.RecvBuf.Max}},
		{"send buffer range", &tcpip.TCPSendBufferSizeRangeOption{Min: cfg.SendBuf.Min, Default: cfg.SendBuf.Default, Max: cfg.SendBuf.Max}},
	}
	for _, o := range opts {
		if terr := s.SetTransportProtocolOption(tcp.ProtocolNumber, o.opt); terr != nil {
			return fail(o.name, terr)
		}
	}
	if terr := s.SetPortRange(cfg.EphemeralPortFirst, cfg.EphemeralPortLast); terr != nil {
		return fail("port range", terr)
	}

	ep := channel.New(cfg.LinkQueueLen, uint32(cfg.MTU), mac)
	if terr := s.CreateNIC(netstackNIC, ethernet.New(ep)); terr != nil {
		return fail("create NIC", terr)
	}
	protoAddr := tcpip.ProtocolAddress{
		Protocol:          ipv4.ProtocolNumber,
		AddressWithPrefix: tcpip.AddrFrom4(addr.As4()).WithPrefix(),
	}
	protoAddr.AddressWithPrefix.PrefixLen = 24
	if terr := s.AddProtocolAddress(netstackNIC, protoAddr, stack.AddressProperties{}); terr != nil {
		return fail("add address", terr)
	}
	s.SetRouteTable([]tcpip.Route{{Destination: protoAddr.AddressWithPrefix.Subnet(), NIC: netstackNIC}})
	return s, ep, nil
}

func ptr[T any](v T) *T { return &v }

// pump moves every frame 'from' sends into 'to', until ctx is cancelled.
// The channel endpoint already holds its own clone of each packet; the
// payload is handed over by reference (no copy), as a NIC's DMA would.
func (n *netstackNetwork) pump(ctx context.Context, from, to *channel.Endpoint) {
	defer n.pumps.Done()
	for {
		pkt := from.ReadContext(ctx)
		if pkt == nil {
			return
		}
		in := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: pkt.ToBuffer()})
		pkt.DecRef()
		// The Ethernet endpoint above 'to' reads the protocol from the frame.
		to.InjectInbound(0, in)
		in.DecRef()
	}
}

func (n *netstackNetwork) Name() string           { return "netstack" }
func (n *netstackNetwork) ServerAddr() netip.Addr { return serverAddr }

func (n *netstackNetwork) Listen(addr netip.AddrPort) (net.Listener, error) {
	full, err := fullAddress(addr)
	if err != nil {
		return nil, fmt.Errorf("netstack listen %v: %w", addr, err)
	}
	l, err := gonet.ListenTCP(n.server, full, ipv4.ProtocolNumber)
	if err != nil {
		return nil, fmt.Errorf("netstack listen %v: %w", addr, err)
	}
	return l, nil
}

func (n *netstackNetwork) Dial(ctx context.Context, addr netip.AddrPort) (net.Conn, error) {
	full, err := fullAddress(addr)
	if err != nil {
		return nil, fmt.Errorf("netstack dial %v: %w", addr, err)
	}
	c, err := gonet.DialContextTCP(ctx, n.client, full, ipv4.ProtocolNumber)
	if err != nil {
		return nil, fmt.Errorf("netstack dial %v: %w", addr, err)
	}
	return c, nil
}

// Retransmits implements RetransmitCounter.
func (n *netstackNetwork) Retransmits() uint64 {
	return n.client.Stats().TCP.Retransmits.Value() + n.server.Stats().TCP.Retransmits.Value()
}

func (n *netstackNetwork) Close() error {
	n.cancel()
	n.pumps.Wait()
	n.clientEP.Close()
	n.serverEP.Close()
	n.client.Close()
	n.server.Close()
	n.client.Wait()
	n.server.Wait()
	return nil
}

func fullAddress(ap netip.AddrPort) (tcpip.FullAddress, error) {
	if !ap.Addr().Is4() {
		return tcpip.FullAddress{}, errNotIPv4
	}
	return tcpip.FullAddress{NIC: netstackNIC, Addr: tcpip.AddrFrom4(ap.Addr().As4()), Port: ap.Port()}, nil
}

var errNotIPv4 = errors.New("only IPv4 addresses are supported")
