// Package stack is the core of netprov's userspace TCP/IP stack: it owns
// the network interfaces (NICs), their addresses, the routing table, the
// registry of network and transport protocols, the per-namespace settings
// (Linux sysctls) and the statistics. The protocols themselves live in
// subpackages (arp, ipv4, ipv6, icmp, udp, tcp) and plug in through the
// interfaces in protocol.go, the way Linux's inet_init registers them:
//
//	link endpoint → NIC (Ethernet framing) → NetworkEndpoint (ipv4, ipv6, arp)
//	→ TransportProtocol (tcp, udp, icmp) → endpoints → socket layer.
//
// Packets move up by direct calls on the link endpoint's receive goroutine
// and down through a Route, so there is no goroutine hop per packet.
package stack
