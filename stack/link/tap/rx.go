package tap

import (
	"errors"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/stack/buffer"
	"github.com/netprov/netprov/stack/header"
	"github.com/netprov/netprov/stack/link/internal/linkbase"
	"github.com/netprov/netprov/stack/link/vnet"
)

// maxRxBatch is how many frames one wake-up reads before delivering.
const maxRxBatch = 64

// vlanLen leaves room for one 802.1Q tag on received frames.
const vlanLen = 4

// receiver is the state of the read goroutine.
type receiver struct {
	e       *Endpoint
	bufSize int            // bytes read per frame, vnet header included
	slot    *buffer.Packet // buffer of the next read
	batch   linkbase.RxBatch
}

func (r *receiver) init(e *Endpoint) {
	r.e = e
	r.bufSize = e.vnetLen() + e.mtu + header.EthernetLen + vlanLen
	if e.vnetHdr {
		// Coalesced input reaches 64 KiB.
		r.bufSize = e.vnetLen() + link64K + header.EthernetLen + vlanLen
	}
	r.batch.Pkts = make([]*buffer.Packet, 0, maxRxBatch)
}

// link64K is the largest coalesced packet the kernel hands over.
const link64K = 65535

func (r *receiver) release() {
	if r.slot != nil {
		r.slot.Release()
		r.slot = nil
	}
}

// readBatch reads frames until the device is empty or the batch is full.
// It returns false to wait for readability when nothing was read.
func (r *receiver) readBatch(fd uintptr) bool {
	for len(r.batch.Pkts) < cap(r.batch.Pkts) {
		if r.slot == nil {
			r.slot = buffer.New(0, r.bufSize)
		}
		n, err := unix.Read(int(fd), r.slot.Raw()[:r.bufSize])
		switch {
		case err == nil:
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.EAGAIN):
			return len(r.batch.Pkts) > 0
		default:
			r.batch.Err = err
			return true
		}
		if pkt := r.take(n); pkt != nil {
			r.batch.Pkts = append(r.batch.Pkts, pkt)
		}
	}
	return true
}

// take turns the n bytes read into the slot into a packet, or drops them.
func (r *receiver) take(n int) *buffer.Packet {
	e := r.e
	hl := e.vnetLen()
	if n < hl+header.EthernetLen || n >= r.bufSize {
		// Runt, or filled the whole buffer: possibly truncated.
		e.stats.RxDropped.Add(1)
		return nil
	}
	var h vnet.Header
	if hl > 0 {
		h = vnet.Decode(r.slot.Raw()[:hl])
	}
	var pkt *buffer.Packet
	if frameLen := n - hl; r.bufSize > smallFrame && frameLen <= smallFrame {
		// A small frame read into a 64 KiB buffer: copy it out and keep
		// the big buffer for the next read.
		pkt = buffer.New(0, frameLen)
		copy(pkt.Append(frameLen), r.slot.Raw()[hl:n])
	} else {
		pkt = r.slot
		r.slot = nil
		pkt.SetBounds(hl, n)
	}
	if hl > 0 {
		h.ApplyInput(&pkt.Meta, header.EthernetLen)
	}
	return pkt
}

// smallFrame is the largest frame copied out of a big receive buffer.
const smallFrame = 1600

func (e *Endpoint) deliver(batch []*buffer.Packet) { e.dispatch.Deliver(batch, &e.stats) }
