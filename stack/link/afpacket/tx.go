package afpacket

import (
	"fmt"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/stack/buffer"
	"github.com/netprov/netprov/stack/header"
	"github.com/netprov/netprov/stack/link/internal/linkbase"
	"github.com/netprov/netprov/stack/link/vnet"
)

// transmitter is the state of WritePackets, serialized by mu: the packets
// of the current sendmmsg batch and their message headers.
type transmitter struct {
	e         *Endpoint
	mu        sync.Mutex
	iovPerMsg int
	hdrs      []unix.Mmsghdr
	iovs      []unix.Iovec
	vnetHdrs  []byte // vnet.Len per message (VnetHdr only)
	pkts      []*buffer.Packet
	next      int // first message not yet sent
	sent      int
	bytes     uint64
	err       error // first error of the call
	writeFn   func(fd uintptr) bool
}

func (t *transmitter) init(e *Endpoint, n int) {
	t.e = e
	t.iovPerMsg = 1
	if e.vnetHdr {
		t.iovPerMsg = 2
		t.vnetHdrs = make([]byte, n*vnet.Len)
	}
	t.hdrs = make([]unix.Mmsghdr, n)
	t.iovs = make([]unix.Iovec, n*t.iovPerMsg)
	t.pkts = make([]*buffer.Packet, 0, n)
	for i := range t.hdrs {
		iov := t.iovs[i*t.iovPerMsg : (i+1)*t.iovPerMsg]
		if e.vnetHdr {
			iov[0].Base = &t.vnetHdrs[i*vnet.Len]
			iov[0].SetLen(vnet.Len)
		}
		t.hdrs[i].Hdr.Iov = &iov[0]
		t.hdrs[i].Hdr.SetIovlen(t.iovPerMsg)
	}
	t.writeFn = t.writeBatch
}

// WritePackets implements link.Endpoint: frames go out in sendmmsg batches.
func (e *Endpoint) WritePackets(pkts []*buffer.Packet) (int, error) {
	if e.fd.Closed() {
		linkbase.DropWrites(pkts, &e.stats)
		return 0, unix.ENETDOWN
	}
	t := &e.tx
	t.mu.Lock()
	defer t.mu.Unlock()
	t.sent, t.bytes, t.err = 0, 0, nil
	for len(pkts) > 0 {
		// Fill a batch with the frames that may be sent.
		t.pkts = t.pkts[:0]
		for len(pkts) > 0 && len(t.pkts) < cap(t.pkts) {
			p := pkts[0]
			pkts = pkts[1:]
			n := p.Len()
			if !linkbase.FrameFits(p, e.vnetHdr, e.mtu) {
				e.stats.TxDropped.Add(1)
				p.Release()
				continue
			}
			i := len(t.pkts)
			t.pkts = append(t.pkts, p)
			if e.vnetHdr {
				vnet.ForOutput(&p.Meta, p.Data(), header.EthernetLen).Encode(t.vnetHdrs[i*vnet.Len:])
			}
			iov := &t.iovs[(i+1)*t.iovPerMsg-1]
			iov.Base = &p.Data()[0]
			iov.SetLen(n)
		}
		if len(t.pkts) == 0 {
			break
		}
		t.next = 0
		err := e.fd.Conn.Write(t.writeFn)
		// Messages not reached (the socket was closed meanwhile) are dropped.
		for _, p := range t.pkts[t.next:] {
			p.Release()
			e.stats.TxDropped.Add(1)
		}
		clear(t.pkts)
		if err != nil && t.err == nil {
			t.err = err
		}
		if err != nil {
			for _, p := range pkts {
				p.Release()
				e.stats.TxDropped.Add(1)
			}
			break
		}
	}
	e.stats.TxPackets.Add(uint64(t.sent))
	e.stats.TxBytes.Add(t.bytes)
	if t.err != nil {
		return t.sent, fmt.Errorf("afpacket: send on %s: %w", e.iface, t.err)
	}
	return t.sent, nil
}

// writeBatch sends the messages from t.next on; it returns false to wait
// for writability. A message the kernel refuses is dropped and counted.
func (t *transmitter) writeBatch(fd uintptr) bool {
	for t.next < len(t.pkts) {
		n, errno := sendmmsg(fd, t.hdrs[t.next:len(t.pkts)])
		switch errno {
		case 0:
			for _, p := range t.pkts[t.next : t.next+n] {
				t.sent++
				t.bytes += uint64(p.Len())
				p.Release()
			}
			t.next += n
			continue
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			// The socket buffer is full; it signals when it drains.
			return false
		}
		// ENOBUFS (the device queue is full), EMSGSIZE, ENETDOWN...: the
		// frame is lost, as a qdisc drop would lose it.
		t.e.stats.TxDropped.Add(1)
		if t.err == nil {
			t.err = errno
		}
		t.pkts[t.next].Release()
		t.next++
	}
	return true
}
