package afpacket

import (
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/stack/buffer"
	"github.com/netprov/netprov/stack/header"
	"github.com/netprov/netprov/stack/link/internal/linkbase"
	"github.com/netprov/netprov/stack/link/vnet"
)

const (
	// vlanLen leaves room for one 802.1Q tag on received frames.
	vlanLen = 4
	// maxCoalesced is the largest coalesced frame payload with VnetHdr.
	maxCoalesced = 65535
	// smallFrame is the largest frame copied out of a 64 KiB buffer so the
	// big buffer can be reused.
	smallFrame = 1600
	// sizeofAuxdata is the size of struct tpacket_auxdata.
	sizeofAuxdata = int(unsafe.Sizeof(unix.TpacketAuxdata{}))
	// ctrlLen holds one PACKET_AUXDATA control message.
	ctrlLen = unix.SizeofCmsghdr + (sizeofAuxdata+7)&^7
)

// receiver is the state of the read goroutine: one slot (packet buffer,
// iovecs, control buffer) per message of the recvmmsg batch.
type receiver struct {
	e        *Endpoint
	bufSize  int
	slots    []*buffer.Packet
	hdrs     []unix.Mmsghdr
	iovs     []unix.Iovec // iovPerMsg per slot
	vnetHdrs []byte       // vnet.Len per slot (VnetHdr only)
	ctrl     []byte       // ctrlLen per slot (without VnetHdr)
	batch    linkbase.RxBatch
}

func (r *receiver) init(e *Endpoint, n int) {
	r.e = e
	r.bufSize = e.mtu + header.EthernetLen + vlanLen
	iovPerMsg := 1
	if e.vnetHdr {
		r.bufSize = maxCoalesced + header.EthernetLen + vlanLen
		iovPerMsg = 2
		r.vnetHdrs = make([]byte, n*vnet.Len)
	} else {
		r.ctrl = make([]byte, n*ctrlLen)
	}
	r.slots = make([]*buffer.Packet, n)
	r.hdrs = make([]unix.Mmsghdr, n)
	r.iovs = make([]unix.Iovec, n*iovPerMsg)
	r.batch.Pkts = make([]*buffer.Packet, 0, n)
	for i := range r.hdrs {
		h := &r.hdrs[i].Hdr
		iov := r.iovs[i*iovPerMsg : (i+1)*iovPerMsg]
		if e.vnetHdr {
			iov[0].Base = &r.vnetHdrs[i*vnet.Len]
			iov[0].SetLen(vnet.Len)
		} else {
			h.Control = &r.ctrl[i*ctrlLen]
		}
		h.Iov = &iov[0]
		h.SetIovlen(iovPerMsg)
		r.refill(i)
	}
}

// refill gives slot i a fresh buffer.
func (r *receiver) refill(i int) {
	p := buffer.New(0, r.bufSize)
	r.slots[i] = p
	iovPerMsg := len(r.iovs) / len(r.slots)
	iov := &r.iovs[(i+1)*iovPerMsg-1]
	iov.Base = &p.Raw()[0]
	iov.SetLen(r.bufSize)
}

func (r *receiver) release() {
	for i, p := range r.slots {
		if p != nil {
			p.Release()
			r.slots[i] = nil
		}
	}
}

// readBatch receives one batch; it returns false to wait for readability.
func (r *receiver) readBatch(fd uintptr) bool {
	for i := range r.hdrs {
		r.hdrs[i].Len = 0
		r.hdrs[i].Hdr.Flags = 0
		if r.ctrl != nil {
			r.hdrs[i].Hdr.SetControllen(ctrlLen)
		}
	}
	var n int
	for {
		var errno unix.Errno
		n, errno = recvmmsg(fd, r.hdrs)
		if errno == unix.EINTR {
			continue
		}
		if errno == unix.EAGAIN {
			return false
		}
		if errno != 0 {
			r.batch.Err = errno
			return true
		}
		break
	}
	for i := range n {
		if pkt := r.take(i); pkt != nil {
			r.batch.Pkts = append(r.batch.Pkts, pkt)
		}
	}
	return true
}

// take turns message i into a packet, or drops it.
func (r *receiver) take(i int) *buffer.Packet {
	e := r.e
	m := &r.hdrs[i]
	frameLen := int(m.Len)
	if e.vnetHdr {
		frameLen -= vnet.Len
	}
	if m.Hdr.Flags&unix.MSG_TRUNC != 0 || frameLen < header.EthernetLen {
		// Larger than the buffer (a GSO frame without VnetHdr), or a runt.
		e.stats.RxDropped.Add(1)
		return nil
	}
	slot := r.slots[i]
	var pkt *buffer.Packet
	if r.bufSize > smallFrame && frameLen <= smallFrame && e.vnetHdr {
		pkt = buffer.New(0, frameLen)
		copy(pkt.Append(frameLen), slot.Raw()[:frameLen])
	} else {
		pkt = slot
		pkt.SetBounds(0, frameLen)
		r.refill(i)
	}
	if e.vnetHdr {
		vnet.Decode(r.vnetHdrs[i*vnet.Len:]).ApplyInput(&pkt.Meta, header.EthernetLen)
	} else if r.checksumReady(i) {
		pkt.Meta.ChecksumVerified = true
	}
	return pkt
}

// checksumReady reads the PACKET_AUXDATA of message i: the kernel either
// verified the checksum (TP_STATUS_CSUM_VALID) or the packet comes from
// this host and its checksum was never computed (TP_STATUS_CSUMNOTREADY).
func (r *receiver) checksumReady(i int) bool {
	h := &r.hdrs[i].Hdr
	ctrl := r.ctrl[i*ctrlLen : i*ctrlLen+int(h.Controllen)]
	for len(ctrl) >= unix.SizeofCmsghdr {
		cm := (*unix.Cmsghdr)(unsafe.Pointer(&ctrl[0]))
		l := int(cm.Len)
		if l < unix.SizeofCmsghdr || l > len(ctrl) {
			return false
		}
		if cm.Level == unix.SOL_PACKET && cm.Type == unix.PACKET_AUXDATA && l >= unix.SizeofCmsghdr+sizeofAuxdata {
			aux := (*unix.TpacketAuxdata)(unsafe.Pointer(&ctrl[unix.SizeofCmsghdr]))
			return aux.Status&(unix.TP_STATUS_CSUMNOTREADY|unix.TP_STATUS_CSUM_VALID) != 0
		}
		l = (l + 7) &^ 7
		if l >= len(ctrl) {
			break
		}
		ctrl = ctrl[l:]
	}
	return false
}

func (e *Endpoint) deliver(batch []*buffer.Packet) { e.dispatch.Deliver(batch, &e.stats) }
