package ipv4

import (
	"slices"
	"sync"

	"github.com/netprov/netprov/stack/buffer"
	"github.com/netprov/netprov/stack/clock"
	"github.com/netprov/netprov/stack/header"
)

// fragKey identifies the datagram a fragment belongs to (RFC 791).
type fragKey struct {
	src, dst [4]byte
	id       uint16
	proto    uint8
}

// fragment is one received piece: pkt's data is the payload bytes
// [off, end) of the datagram.
type fragment struct {
	off, end int
	pkt      *buffer.Packet
}

// datagram is an incomplete datagram (Linux's struct ipq).
type datagram struct {
	key   fragKey
	frags []fragment // sorted by offset, never overlapping
	// length is the payload length: known exactly once the last fragment
	// arrived (lastIn), a lower bound before.
	length   int
	lastIn   bool
	received int
	mem      int
	// header of the first fragment (offset 0), for the reassembled
	// datagram and for the ICMP time exceeded quote.
	hdr      [header.IPv4MaxLen]byte
	hdrLen   int
	firstIn  bool
	noErrors bool // sent to a broadcast/multicast address
	meta     buffer.Meta
	timer    clock.Timer
}

// reassembler holds the datagrams being reassembled (Linux's per-netns
// fqdir for IPv4).
type reassembler struct {
	p   *Protocol
	mu  sync.Mutex
	dgs map[fragKey]*datagram
	mem int
}

func (r *reassembler) init(p *Protocol) {
	r.p = p
	r.dgs = make(map[fragKey]*datagram)
}

// FragMemUsage returns the bytes held by fragments waiting for reassembly.
func (p *Protocol) FragMemUsage() int {
	p.reasm.mu.Lock()
	defer p.reasm.mu.Unlock()
	return p.reasm.mem
}

// add queues a fragment (ip_defrag / ip_frag_queue). It owns pkt, whose
// data starts at the validated IP header of length hl and is truncated to
// the total length. When the fragment completes its datagram, add returns
// the reassembled datagram (header first); otherwise nil.
func (r *reassembler) add(pkt *buffer.Packet, h header.IPv4Fields, hl int, noErrors bool) *buffer.Packet {
	st := r.p.stats
	st.ReasmReqds.Add(1)
	key := fragKey{src: h.Src.As4(), dst: h.Dst.As4(), id: h.ID, proto: h.Protocol}
	off := int(h.FragmentOffset)
	end := off + int(h.TotalLen) - hl
	more := h.Flags&header.IPv4FlagMF != 0

	r.mu.Lock()
	// Over ipfrag_high_thresh every fragment is refused until timeouts free
	// memory (inet_frag_find returns NULL).
	if r.mem > r.p.cfg.FragHighThresh {
		r.mu.Unlock()
		st.ReasmFails.Add(1)
		pkt.Release()
		return nil
	}
	dg := r.dgs[key]
	if dg == nil {
		dg = &datagram{key: key}
		r.dgs[key] = dg
		dg.timer = r.p.s.Clock().AfterFunc(r.p.cfg.FragTime, func() { r.expire(dg) })
	}
	if !more {
		// The last fragment fixes the length; data beyond it, or a
		// different length, means the datagram is corrupt.
		if end < dg.length || (dg.lastIn && end != dg.length) {
			r.killLocked(dg)
			r.mu.Unlock()
			pkt.Release()
			return nil
		}
		dg.lastIn = true
		dg.length = end
	} else {
		// Non-final fragments carry a multiple of 8 bytes.
		end &^= 7
		if end > dg.length {
			if dg.lastIn {
				r.killLocked(dg)
				r.mu.Unlock()
				pkt.Release()
				return nil
			}
			dg.length = end
		}
	}
	if end <= off || end+hl > 0xffff {
		r.killLocked(dg)
		r.mu.Unlock()
		pkt.Release()
		return nil
	}
	i, dup, overlap := dg.position(off, end)
	if dup {
		// A fragment wholly inside received data is ignored (RFC 5722 as
		// amended; Linux IPFRAG_DUP).
		r.mu.Unlock()
		pkt.Release()
		return nil
	}
	if overlap {
		// Any other overlap discards the datagram (Linux since 4.19).
		r.killLocked(dg)
		r.mu.Unlock()
		pkt.Release()
		return nil
	}
	if off == 0 {
		dg.hdrLen = copy(dg.hdr[:], pkt.Data()[:hl])
		dg.firstIn = true
		dg.noErrors = noErrors
		dg.meta = pkt.Meta
	}
	pkt.TrimFront(hl)
	pkt.Truncate(end - off)
	dg.frags = slices.Insert(dg.frags, i, fragment{off: off, end: end, pkt: pkt})
	dg.received += end - off
	size := len(pkt.Raw())
	dg.mem += size
	r.mem += size
	if !dg.lastIn || !dg.firstIn || dg.received != dg.length {
		r.mu.Unlock()
		return nil
	}
	out := r.reassembleLocked(dg)
	r.mu.Unlock()
	return out
}

// position finds where [off, end) goes in the sorted fragment list and
// whether it duplicates received data (lies inside one contiguous run) or
// overlaps it otherwise.
func (dg *datagram) position(off, end int) (i int, dup, overlap bool) {
	i = len(dg.frags)
	for j, f := range dg.frags {
		if end <= f.off {
			i = j
			break
		}
		if off >= f.end {
			continue
		}
		// Overlaps f: find the contiguous run around f.
		lo, hi := j, j
		for lo > 0 && dg.frags[lo-1].end == dg.frags[lo].off {
			lo--
		}
		for hi+1 < len(dg.frags) && dg.frags[hi].end == dg.frags[hi+1].off {
			hi++
		}
		if off >= dg.frags[lo].off && end <= dg.frags[hi].end {
			return j, true, false
		}
		return j, false, true
	}
	return i, false, false
}

// reassembleLocked builds the complete datagram (ip_frag_reasm) and
// forgets the queue.
func (r *reassembler) reassembleLocked(dg *datagram) *buffer.Packet {
	total := dg.hdrLen + dg.length
	out := buffer.New(buffer.Headroom, total)
	b := out.Append(total)
	copy(b, dg.hdr[:dg.hdrLen])
	for _, f := range dg.frags {
		copy(b[dg.hdrLen+f.off:], f.pkt.Data())
	}
	h := header.IPv4(b)
	h.SetTotalLen(uint16(total))
	h.SetFlagsFragmentOffset(h.Flags()&^header.IPv4FlagMF, 0)
	h.SetChecksum(h.ComputeChecksum())
	out.Meta = dg.meta
	r.removeLocked(dg)
	r.p.stats.ReasmOKs.Add(1)
	return out
}

// killLocked drops an incomplete datagram (inet_frag_kill) and counts the
// failure.
func (r *reassembler) killLocked(dg *datagram) {
	r.removeLocked(dg)
	r.p.stats.ReasmFails.Add(1)
}

func (r *reassembler) removeLocked(dg *datagram) {
	if r.dgs[dg.key] == dg {
		delete(r.dgs, dg.key)
	}
	dg.timer.Stop()
	for _, f := range dg.frags {
		f.pkt.Release()
	}
	dg.frags = nil
	r.mem -= dg.mem
	dg.mem = 0
}

// expire is ip_expire: the datagram timed out. If its first fragment had
// arrived, the sender gets an ICMP time exceeded (fragment reassembly time
// exceeded) quoting it.
func (r *reassembler) expire(dg *datagram) {
	r.mu.Lock()
	if r.dgs[dg.key] != dg {
		r.mu.Unlock()
		return
	}
	var quote [icmpErrorRoom]byte
	n := 0
	if dg.firstIn && !dg.noErrors && len(dg.frags) > 0 && dg.frags[0].off == 0 {
		n = copy(quote[:], dg.hdr[:dg.hdrLen])
		n += copy(quote[n:], dg.frags[0].pkt.Data())
	}
	r.removeLocked(dg)
	r.mu.Unlock()
	r.p.stats.ReasmTimeout.Add(1)
	r.p.stats.ReasmFails.Add(1)
	if n > 0 {
		r.p.sendError(quote[:n], header.ICMPv4TimeExceeded, header.ICMPv4CodeReassemblyExceeded, 0)
	}
}
