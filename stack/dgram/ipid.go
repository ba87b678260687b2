package dgram

import (
	"math/rand/v2"
	"sync/atomic"
)

// SeedIPID seeds a datagram socket's own IPv4 identification counter on
// connect (spec 32: ip4_datagram_connect sets inet_id to a random value).
// Once a socket has a destination, ip_select_ident_segs takes every IP ID
// from that counter, whatever the packet's destination, and for non-TCP
// sockets the ID is the value after atomic_add_return: seed+segs. The
// network layer uses the value before its add (stack.NetworkParams.ID, as
// TCP needs), so the counter is stored one ahead: the first datagram then
// carries seed+1, as on Linux.
func SeedIPID(id *atomic.Uint32) {
	id.Store(rand.Uint32N(1<<16) + 1)
}
