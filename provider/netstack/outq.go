package netstack

import (
	"net/netip"

	"golang.org/x/sys/unix"
)

// ioctlOutq is SIOCOUTQ (or SIOCOUTQNSD) of a stream socket, target
// being the target end (-1: not held). Linux counts what the peer has not
// acked; the target's bytes pass the conduit first, so they are counted
// where they are: not yet sent by the target end (TCP conduit), in our
// end's receive queue (less the connect filler or the sentinel), in the
// up pump (upInFlight), then in the stack's send queue. They are read in
// that order, our end's queue with the pump's bytes under upMu, so a
// byte moving along is counted twice at worst, never missed.
func (s *Socket) ioctlOutq(req uint, target int) (int, error) {
	v := 0
	if s.c.tcp != nil && target >= 0 {
		v += outqNotSent(target)
	}
	s.mu.Lock()
	filler := s.filler
	if s.sentinel {
		filler++
	}
	ours := s.c.ours // set by join, under s.mu
	s.mu.Unlock()
	s.upMu.Lock()
	withFd(ours, func(fd int) {
		if q := inq(fd) - filler; q > 0 {
			v += q
		}
	})
	v += s.upInFlight
	s.upMu.Unlock()
	q, err := s.so.Ioctl(req)
	if err != nil {
		return q, err
	}
	v += q
	if v == 0 && req == unix.SIOCOUTQ {
		s.settleLocalPeer()
	}
	return v, nil
}

// settleLocalPeer makes "all acked" mean "readable by the peer" when the
// peer is a socket of this provider: Linux's peer acks bytes as it
// queues them for reading, while ours still has to move them from its
// stack socket into its conduit. A program that waits for SIOCOUTQ 0 and
// then reads on the peer's side (without waiting for POLLIN) must find
// them, so the peer's pump is waited for (bounded, settleReceived).
func (s *Socket) settleLocalPeer() {
	info := s.so.Endpoint().Info()
	if s.p.node == nil || !info.Remote.IsValid() || !s.p.node.Stack.IsLocalAddress(info.Remote.Addr()) {
		return
	}
	if peer := s.p.streamAt(info.Remote, info.Local); peer != nil {
		peer.settleReceived()
	}
}

// streamAt returns the provider's stream socket whose connection goes
// from local to remote, or nil. The endpoints are asked outside p.mu,
// which is never held while an endpoint's lock is taken.
func (p *Provider) streamAt(local, remote netip.AddrPort) *Socket {
	p.mu.Lock()
	streams := make([]*Socket, 0, len(p.sockets))
	for s := range p.sockets {
		if s.stream {
			streams = append(streams, s)
		}
	}
	p.mu.Unlock()
	for _, s := range streams {
		if info := s.so.Endpoint().Info(); info.Local == local && info.Remote == remote {
			return s
		}
	}
	return nil
}
