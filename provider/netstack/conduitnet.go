package netstack

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/stack/header"
	"github.com/netprov/netprov/stack/netns"
)

// conduitNet is the provider's private network namespace, in which the
// conduits of UDP and TCP sockets live: a pair of kernel sockets of the
// socket's protocol on loopback, one injected into the target, one read
// and written by the pumps (udpconduit.go; tcppair.go, tcplisten.go). A
// kernel socket answers the target's native calls exactly as Linux does
// (EDESTADDRREQ on an unconnected UDP send, a TCP reset's ECONNRESET and
// EPIPE, ...). UDP conduits also carry the stack's ICMP errors: the
// provider injects the matching ICMP error on the namespace's loopback,
// quoting a datagram of the pair, and the kernel sets the target's
// socket error (ECONNREFUSED for a port unreachable) as it would for a
// real one.
//
// The namespace holds nothing but loopback and the provider's own
// sockets, so nothing else can reach a conduit. It is made by a worker
// goroutine whose locked thread left the provider's namespace for good
// (netns.OnDiscardedThread: the thread dies with the worker, and is never
// the main thread); sockets are created on it and keep the namespace
// alive while they are open.
type conduitNet struct {
	reqs   chan func()
	closed chan struct{}
	once   sync.Once

	// raw4 and raw6 send the injected ICMP errors; their input is
	// filtered out entirely. raw6 is -1 without IPv6. rawMu keeps close
	// from closing them under a send.
	rawMu      sync.RWMutex
	raw4, raw6 int
	v6         bool // raw6 was made: AF_INET6 conduits can be

	// next numbers the conduits for their loopback addresses (see
	// conduitLoopback).
	next atomic.Uint32

	// pools hold conduit sockets made in advance (poolKind: UDP pairs
	// for udpPair, single TCP sockets for tcpSocket, of either family);
	// refill asks the worker to top one up.
	pools  [numPools]chan [2]int
	refill chan int

	diag tcpDiag // (tcpdiag.go)
}

// conduitPool is how many UDP pairs, or TCP sockets, of each family the
// worker keeps made in advance: a socket made on the worker costs a
// hand-off to its thread (two wake-ups, more than the socket itself),
// which the pool takes off the path of the socket() or accept() the
// target waits for.
const conduitPool = 16

// The pools, by protocol and family.
const (
	poolUDP4 = iota
	poolUDP6
	poolTCP4
	poolTCP6
	numPools
)

// poolKind is the pool of conduit sockets of proto (IPPROTO_UDP or
// IPPROTO_TCP) and family.
func poolKind(proto, family int) int {
	k := poolUDP4
	if proto == unix.IPPROTO_TCP {
		k = poolTCP4
	}
	if family == unix.AF_INET6 {
		k++
	}
	return k
}

// newConduitNet makes the namespace. It needs CAP_SYS_ADMIN; without it
// UDP and TCP sockets keep AF_UNIX conduits (see Provider.wrap).
func newConduitNet() (*conduitNet, error) {
	n := &conduitNet{reqs: make(chan func()), closed: make(chan struct{}), raw4: -1, raw6: -1, refill: make(chan int, numPools), diag: tcpDiag{nl: -1}}
	for i := range n.pools {
		n.pools[i] = make(chan [2]int, conduitPool)
	}
	errc := make(chan error, 1)
	netns.OnDiscardedThread(func() { n.serve(errc) })
	if err := <-errc; err != nil {
		return nil, err
	}
	return n, nil
}

// serve is the worker, on a locked thread that leaves the provider's
// namespace for good and is thrown away when serve returns.
func (n *conduitNet) serve(errc chan<- error) {
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		errc <- fmt.Errorf("conduit namespace: unshare: %w", err)
		return
	}
	if err := n.setup(); err != nil {
		n.closeRaw()
		errc <- fmt.Errorf("conduit namespace: %w", err)
		return
	}
	errc <- nil
	for {
		select {
		case f := <-n.reqs:
			f()
		case kind := <-n.refill:
			n.fillPool(kind)
		case <-n.closed:
			for _, pool := range n.pools {
				for len(pool) > 0 {
					for _, fd := range <-pool {
						if fd >= 0 {
							unix.Close(fd)
						}
					}
				}
			}
			return
		}
	}
}

// fillPool tops up a pool, on the worker (the only sender).
func (n *conduitNet) fillPool(kind int) {
	pool := n.pools[kind]
	family := unix.AF_INET
	if kind == poolUDP6 || kind == poolTCP6 {
		family = unix.AF_INET6
	}
	for len(pool) < cap(pool) {
		fds, err := makePooled(kind, family)
		if err != nil {
			return
		}
		pool <- fds
	}
}

// makePooled makes what pool kind holds, in the calling thread's
// namespace: a UDP pair, or a TCP socket (and -1).
func makePooled(kind, family int) ([2]int, error) {
	if kind == poolTCP4 || kind == poolTCP6 {
		fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		return [2]int{fd, -1}, err
	}
	return makeUDPPair(family)
}

// pooled returns what pool kind holds (see makePooled): from the pool,
// else made on the worker now; either way the worker tops the pool up
// afterwards.
func (n *conduitNet) pooled(kind, family int) (fds [2]int, err error) {
	pool := n.pools[kind]
	select {
	case fds = <-pool:
		if len(pool) < cap(pool)/2 {
			n.askRefill(kind)
		}
		return fds, nil
	default:
	}
	if werr := n.onWorker(func() { fds, err = makePooled(kind, family) }); werr != nil {
		return fds, werr
	}
	if err != nil {
		return fds, err
	}
	n.askRefill(kind)
	return fds, nil
}

// onWorker runs f on the worker, in the namespace, and waits for it;
// errConduitNetClosed (f not run) once the namespace is closed.
func (n *conduitNet) onWorker(f func()) error {
	done := make(chan struct{})
	select {
	case n.reqs <- func() {
		defer close(done)
		f()
	}:
		<-done
		return nil
	case <-n.closed:
		return errConduitNetClosed
	}
}

// makeUDPPair creates two UDP sockets of family in the calling thread's
// namespace, the second non-blocking.
func makeUDPPair(family int) (fds [2]int, err error) {
	if fds[0], err = unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0); err != nil {
		return fds, err
	}
	if fds[1], err = unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0); err != nil {
		unix.Close(fds[0])
	}
	return fds, err
}

// setup brings loopback up and opens the raw sockets, on the worker.
func (n *conduitNet) setup() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("socket: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	ifr.SetUint16(unix.IFF_UP | unix.IFF_LOOPBACK | unix.IFF_RUNNING)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("lo up: %w", err)
	}
	if n.raw4, err = unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_ICMP); err != nil {
		return fmt.Errorf("raw ICMP socket: %w", err)
	}
	// ICMP_FILTER: a set bit drops that type; drop them all.
	if err := unix.SetsockoptInt(n.raw4, unix.SOL_RAW, unix.ICMP_FILTER, -1); err != nil {
		return fmt.Errorf("ICMP_FILTER: %w", err)
	}
	if !loopbackV6() {
		return nil // no IPv6: AF_INET6 sockets keep AF_UNIX conduits
	}
	if n.raw6, err = unix.Socket(unix.AF_INET6, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_ICMPV6); err != nil {
		n.raw6 = -1
		return nil
	}
	var block unix.ICMPv6Filter
	for i := range block.Data {
		block.Data[i] = ^uint32(0)
	}
	if err := unix.SetsockoptICMPv6Filter(n.raw6, unix.SOL_ICMPV6, unix.ICMPV6_FILTER, &block); err != nil {
		return fmt.Errorf("ICMPV6_FILTER: %w", err)
	}
	n.v6 = true
	return nil
}

// loopbackV6 reports whether ::1 can be bound here (IPv6 may be missing
// or disabled).
func loopbackV6() bool {
	fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	return unix.Bind(fd, &unix.SockaddrInet6{Addr: netip.IPv6Loopback().As16()}) == nil
}

// Loopback blocks of the conduit addresses (conduitLoopback).
const (
	targetBlock   = 1 // 127.1.0.0/16: UDP target ends
	oursBlock     = 2 // 127.2.0.0/16: UDP our ends
	pairBlock     = 3 // 127.3.0.0/16: the TCP pair listener
	listenerBlock = 4 // 127.4.0.0/16: listening TCP target ends
)

// conduitLoopback is the loopback address of conduit number i in block,
// to bind with port 0. IPv4 conduits spread over 127.block.0.0/16, each
// address with its own range of ephemeral ports (all of 127.0.0.0/8 is
// local). IPv6 has ::1 only.
func conduitLoopback(v6 bool, block byte, i uint32) netip.Addr {
	if v6 {
		return netip.IPv6Loopback()
	}
	return netip.AddrFrom4([4]byte{127, block, byte(i >> 8), byte(i)})
}

var errConduitNetClosed = errors.New("conduit namespace closed")

// udpPair returns two UDP sockets of family in the namespace, the second
// non-blocking (pooled).
func (n *conduitNet) udpPair(family int) ([2]int, error) {
	fds, err := n.pooled(poolKind(unix.IPPROTO_UDP, family), family)
	if err != nil {
		return fds, fmt.Errorf("conduit UDP sockets: %w", err)
	}
	return fds, nil
}

// askRefill asks the worker to top up pool kind (without waiting; a
// request already queued will do).
func (n *conduitNet) askRefill(kind int) {
	select {
	case n.refill <- kind:
	default:
	}
}

// icmpForErrno is the ICMP error (type, code) that makes the kernel's
// UDP error handler set errno on a connected socket without IP_RECVERR
// (__udp4_lib_err and icmp_err_convert, __udp6_lib_err and
// icmpv6_err_convert: only "fatal" errors count). ok is false for an
// errno no such message produces.
func icmpForErrno(v6 bool, errno unix.Errno) (typ, code uint8, ok bool) {
	if v6 {
		switch errno {
		case unix.ECONNREFUSED:
			return header.ICMPv6DstUnreachable, header.ICMPv6CodePortUnreachable, true
		case unix.EACCES:
			return header.ICMPv6DstUnreachable, header.ICMPv6CodeAdminProhibited, true
		case unix.EPROTO:
			return header.ICMPv6ParamProblem, header.ICMPv6CodeErroneousHeader, true
		}
		return 0, 0, false
	}
	switch errno {
	case unix.ECONNREFUSED:
		return header.ICMPv4DstUnreachable, header.ICMPv4CodePortUnreachable, true
	case unix.EHOSTUNREACH:
		// (Host unreachable, code 1, is not fatal: it sets no error.)
		return header.ICMPv4DstUnreachable, header.ICMPv4CodeHostProhibited, true
	case unix.ENOPROTOOPT:
		return header.ICMPv4DstUnreachable, header.ICMPv4CodeProtoUnreachable, true
	case unix.ENETUNREACH:
		return header.ICMPv4DstUnreachable, header.ICMPv4CodeNetUnknown, true
	case unix.EHOSTDOWN:
		return header.ICMPv4DstUnreachable, header.ICMPv4CodeHostUnknown, true
	case unix.ENONET:
		return header.ICMPv4DstUnreachable, header.ICMPv4CodeHostIsolated, true
	case unix.EPROTO:
		return header.ICMPv4ParamProblem, 0, true
	}
	return 0, 0, false
}

// injectError makes the kernel report errno on the connected UDP socket
// bound to from (and connected to to): it sends the ICMP error for a
// datagram from→to to from. It reports false when errno has no such
// message or the send failed; the error then stays with the provider.
func (n *conduitNet) injectError(from, to netip.AddrPort, errno unix.Errno) bool {
	v6 := from.Addr().Is6()
	typ, code, ok := icmpForErrno(v6, errno)
	if !ok {
		return false
	}
	n.rawMu.RLock()
	defer n.rawMu.RUnlock()
	quoted := header.UDPFields{SrcPort: from.Port(), DstPort: to.Port(), Length: header.UDPLen}
	if v6 {
		if n.raw6 < 0 {
			return false
		}
		var pkt [header.ICMPv6MinLen + header.IPv6Len + header.UDPLen]byte
		inner := pkt[header.ICMPv6MinLen:]
		header.IPv6Fields{PayloadLen: header.UDPLen, NextHeader: header.ProtoUDP, HopLimit: 64, Src: from.Addr(), Dst: to.Addr()}.Emit(inner)
		quoted.Emit(inner[header.IPv6Len:])
		header.ICMPv6Fields{Type: typ, Code: code}.Emit(pkt[:], inner, to.Addr(), from.Addr())
		return unix.Sendto(n.raw6, pkt[:], 0, &unix.SockaddrInet6{Addr: from.Addr().As16()}) == nil
	}
	if n.raw4 < 0 {
		return false
	}
	var pkt [header.ICMPv4MinLen + header.IPv4MinLen + header.UDPLen]byte
	inner := pkt[header.ICMPv4MinLen:]
	header.IPv4Fields{TotalLen: header.IPv4MinLen + header.UDPLen, TTL: 64, Protocol: header.ProtoUDP, Src: from.Addr(), Dst: to.Addr()}.Emit(inner)
	quoted.Emit(inner[header.IPv4MinLen:])
	header.ICMPv4Fields{Type: typ, Code: code}.Emit(pkt[:], inner)
	return unix.Sendto(n.raw4, pkt[:], 0, &unix.SockaddrInet4{Addr: from.Addr().As4()}) == nil
}

func (n *conduitNet) closeRaw() {
	for _, fd := range []int{n.raw4, n.raw6} {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
	n.raw4, n.raw6 = -1, -1
}

// close stops the worker (its thread exits) and closes the raw and
// sock_diag sockets; conduits still open keep the namespace.
func (n *conduitNet) close() {
	n.once.Do(func() {
		close(n.closed)
		n.rawMu.Lock()
		n.closeRaw()
		n.rawMu.Unlock()
		n.diag.mu.Lock()
		if n.diag.nl >= 0 {
			unix.Close(n.diag.nl)
			n.diag.nl = -1
		}
		n.diag.mu.Unlock()
	})
}
