package dgram

import (
	"slices"
	"sync"

	"github.com/netprov/netprov/stack"
)

// The socket tables of the datagram transports map a port (UDP) or an
// echo identifier (ICMP) to the sockets bound to it, in bind order.

// Unhash removes e from the bucket m[k], keeping the order of the others,
// and drops the bucket when it empties. The caller holds the table lock.
func Unhash[K, E comparable](m map[K][]E, k K, e E) {
	l := slices.DeleteFunc(m[k], func(o E) bool { return o == e })
	if len(l) == 0 {
		delete(m, k)
	} else {
		m[k] = l
	}
}

// Infos lists every socket of the table m, guarded by mu: the sockets are
// collected under the read lock, then asked for their Info without it
// (Info takes the socket's lock, which is always taken before the
// table's).
func Infos[K comparable, E interface{ Info() stack.EndpointInfo }](mu *sync.RWMutex, m map[K][]E) []stack.EndpointInfo {
	mu.RLock()
	var socks []E
	for _, l := range m {
		socks = append(socks, l...)
	}
	mu.RUnlock()
	out := make([]stack.EndpointInfo, 0, len(socks))
	for _, s := range socks {
		out = append(out, s.Info())
	}
	return out
}
