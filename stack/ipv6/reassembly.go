package ipv6

import (
	"net/netip"
	"slices"
	"sync"

	"github.com/netprov/netprov/stack/buffer"
	"github.com/netprov/netprov/stack/clock"
	"github.com/netprov/netprov/stack/header"
)

// Reassembly of fragmented datagrams (RFC 8200 §4.5), after Linux's
// reassembly.c: overlapping fragments discard the whole datagram (RFC 5722),
// duplicates are ignored, incomplete datagrams expire after FragTimeout, and
// all queues together hold at most FragHighThresh bytes.

// reasmKey identifies a datagram being reassembled. nic is set only for
// link-scoped destinations, whose addresses mean something per link.
type reasmKey struct {
	src, dst netip.Addr
	id       uint32
	nic      int
}

// fragment is one received fragment, kept whole.
type fragment struct {
	pkt *buffer.Packet
	// start and end are the fragment's byte range in the fragmentable part.
	start, end int
	// dataOff is where the fragment's data starts in pkt.Data().
	dataOff int
}

// reasmQueue is the state of one incomplete datagram.
type reasmQueue struct {
	key   reasmKey
	frags []fragment // sorted by start, never overlapping
	// length is the datagram's fragmentable length, known once the last
	// fragment arrived (lastIn); meat is the number of bytes received.
	length, meat    int
	firstIn, lastIn bool
	// firstFragHdrOff is the offset in the payload of the first
	// fragment's fragment header (the unfragmentable part ends there).
	firstFragHdrOff int
	// firstEP is the endpoint the first fragment came in on, for the
	// time exceeded message.
	firstEP *Endpoint
	mem     int
	timer   clock.Timer
}

type reassembler struct {
	p      *Protocol
	mu     sync.Mutex
	queues map[reasmKey]*reasmQueue
	mem    int
}

func newReassembler(p *Protocol) *reassembler {
	return &reassembler{p: p, queues: make(map[reasmKey]*reasmQueue)}
}

// add queues the fragment pkt (headers f, extension walk ext) and, when it
// completes its datagram, passes the reassembled datagram to e.receive.
func (r *reassembler) add(e *Endpoint, pkt *buffer.Packet, f header.IPv6Fields, ext header.IPv6ExtInfo) {
	st := &e.stats().IPv6
	st.ReasmReqds.Add(1)
	frag := ext.Fragment
	dataOff := header.IPv6Len + ext.Offset
	start := int(frag.Offset)
	end := start + pkt.Len() - dataOff
	if end > maxPayload {
		// The fragment reaches past the largest datagram: parameter
		// problem pointing at the fragment offset field.
		st.InHdrErrors.Add(1)
		e.sendError(pkt.Data(), f, pkt.Meta.LinkBroadcast, header.ICMPv6ParamProblem,
			header.ICMPv6CodeErroneousHeader, uint32(header.IPv6Len+ext.FragmentHeaderOffset+2))
		pkt.Release()
		return
	}
	if frag.More && (end-start)&7 != 0 {
		// Every fragment but the last carries a multiple of 8 bytes:
		// parameter problem pointing at the payload length.
		st.InHdrErrors.Add(1)
		e.sendError(pkt.Data(), f, pkt.Meta.LinkBroadcast, header.ICMPv6ParamProblem,
			header.ICMPv6CodeErroneousHeader, 4)
		pkt.Release()
		return
	}

	if start == 0 && frag.More && upperHeaderTruncated(frag.NextHeader, pkt.Data()[dataOff:]) {
		// RFC 7112: the first fragment must hold the whole header chain
		// up to the transport header (ipv6frag_thdr_truncated).
		st.InHdrErrors.Add(1)
		e.sendError(pkt.Data(), f, pkt.Meta.LinkBroadcast, header.ICMPv6ParamProblem, icmpv6CodeHeaderIncomplete, 0)
		pkt.Release()
		return
	}

	key := reasmKey{src: f.Src, dst: f.Dst, id: frag.ID}
	if f.Dst.IsMulticast() || f.Dst.IsLinkLocalUnicast() {
		key.nic = e.nic.ID()
	}
	truesize := len(pkt.Raw())

	r.mu.Lock()
	q := r.queues[key]
	if q == nil {
		if r.mem+truesize > r.p.cfg.FragHighThresh {
			r.mu.Unlock()
			st.ReasmFails.Add(1)
			pkt.Release()
			return
		}
		q = &reasmQueue{key: key}
		r.queues[key] = q
		q.timer = r.p.s.Clock().AfterFunc(r.p.cfg.FragTimeout, func() { r.expire(q) })
	} else if r.mem+truesize > r.p.cfg.FragHighThresh {
		r.mu.Unlock()
		st.ReasmFails.Add(1)
		pkt.Release()
		return
	}

	// Length rules of ip6_frag_queue.
	bad := end == start
	if !frag.More {
		bad = bad || end < q.length || (q.lastIn && end != q.length)
	} else if end > q.length {
		bad = bad || q.lastIn
	}
	if bad {
		dead := r.killLocked(q)
		r.mu.Unlock()
		st.ReasmFails.Add(1)
		pkt.Release()
		releaseFragments(dead)
		return
	}

	// Overlap check (RFC 5722): a fragment inside one already received is
	// a duplicate and ignored; any other overlap discards the datagram.
	i, _ := slices.BinarySearchFunc(q.frags, start, func(x fragment, s int) int { return x.start - s })
	for _, j := range []int{i - 1, i} {
		if j < 0 || j >= len(q.frags) {
			continue
		}
		o := q.frags[j]
		if start < o.end && o.start < end {
			if start >= o.start && end <= o.end {
				r.mu.Unlock()
				pkt.Release()
				return
			}
			dead := r.killLocked(q)
			r.mu.Unlock()
			st.ReasmFails.Add(1)
			pkt.Release()
			releaseFragments(dead)
			return
		}
	}
	q.frags = slices.Insert(q.frags, i, fragment{pkt: pkt, start: start, end: end, dataOff: dataOff})
	q.meat += end - start
	q.mem += truesize
	r.mem += truesize
	if !frag.More {
		q.lastIn = true
		q.length = end
	} else if end > q.length {
		q.length = end
	}
	if start == 0 {
		q.firstIn = true
		q.firstFragHdrOff = ext.FragmentHeaderOffset
		q.firstEP = e
	}
	if !(q.firstIn && q.lastIn && q.meat == q.length) {
		r.mu.Unlock()
		return
	}
	frags := r.removeLocked(q)
	r.mu.Unlock()

	linkMulticast := pkt.Meta.LinkBroadcast
	whole := r.build(q, frags)
	releaseFragments(frags)
	if whole == nil {
		st.ReasmFails.Add(1)
		return
	}
	st.ReasmOKs.Add(1)
	whole.Meta.NIC = e.nic.ID()
	whole.Meta.LinkBroadcast = linkMulticast
	e.receive(whole)
}

// build joins the fragments of a complete datagram: the first fragment's
// header and unfragmentable part, with the fragment header removed, then
// every fragment's data. It returns nil if the result is too big.
func (r *reassembler) build(q *reasmQueue, frags []fragment) *buffer.Packet {
	first := frags[0].pkt.Data()
	unfrag := header.IPv6Len + q.firstFragHdrOff
	total := unfrag + q.length
	if total-header.IPv6Len > maxPayload {
		return nil
	}
	out := buffer.New(buffer.Headroom, total)
	b := out.Append(total)
	copy(b, first[:unfrag])
	// The header before the fragment header now names what the fragment
	// header named.
	field := nextHeaderFieldOffset(first[6], first[header.IPv6Len:], q.firstFragHdrOff)
	b[field] = first[unfrag]
	header.IPv6(b).SetPayloadLen(uint16(total - header.IPv6Len))
	for _, fr := range frags {
		copy(b[unfrag+fr.start:], fr.pkt.Data()[fr.dataOff:])
	}
	return out
}

// expire discards a datagram whose fragments did not all arrive in time
// and, if its first fragment did, tells the sender with a time exceeded
// (fragment reassembly time exceeded), as ip6frag_expire_frag_queue does.
func (r *reassembler) expire(q *reasmQueue) {
	r.mu.Lock()
	if r.queues[q.key] != q {
		r.mu.Unlock()
		return
	}
	frags := r.removeLocked(q)
	r.mu.Unlock()
	st := &r.p.s.Stats().IPv6
	st.ReasmTimeout.Add(1)
	st.ReasmFails.Add(1)
	if q.firstIn && len(frags) > 0 && frags[0].start == 0 {
		first := frags[0].pkt
		if f, err := header.ParseIPv6(first.Data()); err == nil {
			q.firstEP.sendError(first.Data(), f, first.Meta.LinkBroadcast, header.ICMPv6TimeExceeded,
				header.ICMPv6CodeReassemblyExceeded, 0)
		}
	}
	releaseFragments(frags)
}

// removeLocked takes q out of the table and returns its fragments.
func (r *reassembler) removeLocked(q *reasmQueue) []fragment {
	delete(r.queues, q.key)
	q.timer.Stop()
	r.mem -= q.mem
	q.mem = 0
	frags := q.frags
	q.frags = nil
	return frags
}

// killLocked discards q (inet_frag_kill).
func (r *reassembler) killLocked(q *reasmQueue) []fragment { return r.removeLocked(q) }

// closeEndpoint drops the datagrams whose first fragment came in on e, so
// no timer sends through a closed NIC.
func (r *reassembler) closeEndpoint(e *Endpoint) {
	r.mu.Lock()
	var dead []fragment
	for _, q := range r.queues {
		if q.firstEP == e {
			dead = append(dead, r.removeLocked(q)...)
		}
	}
	r.mu.Unlock()
	releaseFragments(dead)
}

// pending returns the number of incomplete datagrams and the memory they
// hold (for tests and `netstat`).
func (r *reassembler) pending() (queues, mem int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.queues), r.mem
}

func releaseFragments(frags []fragment) {
	for _, f := range frags {
		f.pkt.Release()
	}
}

// icmpv6CodeHeaderIncomplete is the parameter problem code for a first
// fragment without the whole header chain (RFC 7112).
const icmpv6CodeHeaderIncomplete = 3

// upperHeaderTruncated reports whether data, the fragmentable part of a
// first fragment starting with header nh, lacks the rest of the extension
// header chain or the fixed part of the transport header.
func upperHeaderTruncated(nh uint8, data []byte) bool {
	ext, err := header.WalkIPv6Extensions(nh, data)
	if err != nil || ext.HasFragment {
		return true
	}
	need := 0
	switch ext.Proto {
	case header.ProtoTCP:
		need = 20
	case header.ProtoUDP, header.ProtoICMPv6:
		need = 8
	}
	return ext.Offset+need > len(data)
}
