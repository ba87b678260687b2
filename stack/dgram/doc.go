// Package dgram holds what the datagram transports (UDP, ICMP echo
// sockets) share, as Linux shares struct sock and net/core/datagram.c
// between udp.c and ping.c: the per-socket state both keep (Socket: the
// pending error, shutdown flags, receive queue and buffer sizes, and the
// SOL_SOCKET/SOL_IP/SOL_IPV6 options both have), the sysctls both read
// (Config), the conversion of ICMP errors to errno values, and the
// receive queue: a ring of received packets, each held as the
// buffer.Packet the network layer delivered (no copy), charged to the
// socket's receive buffer by its truesize as Linux charges sk_rmem_alloc.
package dgram
