package dgram

import (
	"net/netip"

	"github.com/netprov/netprov/stack/buffer"
)

// Datagram is one queued datagram. Pkt's data is the payload only.
type Datagram struct {
	Pkt  *buffer.Packet
	From netip.AddrPort
	// Truesize is what the datagram is charged to the receive buffer.
	Truesize int
	// Info is kept for recvmsg's control messages (EnqueueInfo).
	Info RecvInfo
}

// Truesize models Linux's skb->truesize for a datagram with n payload
// bytes: SKB_TRUESIZE of the data area (NET_SKB_PAD, link, IP and UDP
// headers, payload, cache-line aligned) plus the sk_buff (256) and
// skb_shared_info (320) structures.
func Truesize(n int) int {
	data := 64 + 14 + 40 + 8 + n
	data = (data + 63) &^ 63
	return data + 256 + 320
}

// Queue is a FIFO of datagrams. It is not safe for concurrent use: the
// owning endpoint locks around it. The ring grows to the largest backlog
// seen and is then reused, so steady-state queueing does not allocate.
type Queue struct {
	ring  []Datagram
	head  int
	n     int
	bytes int
}

// Len is the number of queued datagrams.
func (q *Queue) Len() int { return q.n }

// Bytes is the receive-buffer charge of the queued datagrams (rmem_alloc).
func (q *Queue) Bytes() int { return q.bytes }

// Push appends d.
func (q *Queue) Push(d Datagram) {
	if q.n == len(q.ring) {
		size := 2 * len(q.ring)
		if size == 0 {
			size = 16
		}
		ring := make([]Datagram, size)
		for i := 0; i < q.n; i++ {
			ring[i] = q.ring[(q.head+i)%len(q.ring)]
		}
		q.ring, q.head = ring, 0
	}
	q.ring[(q.head+q.n)%len(q.ring)] = d
	q.n++
	q.bytes += d.Truesize
}

// Front returns the oldest datagram, or nil.
func (q *Queue) Front() *Datagram {
	if q.n == 0 {
		return nil
	}
	return &q.ring[q.head]
}

// Pop removes the oldest datagram and returns it; the caller releases its
// packet.
func (q *Queue) Pop() Datagram {
	d := q.ring[q.head]
	q.ring[q.head] = Datagram{}
	q.head = (q.head + 1) % len(q.ring)
	q.n--
	q.bytes -= d.Truesize
	return d
}

// Clear releases every queued packet.
func (q *Queue) Clear() {
	for q.n > 0 {
		d := q.Pop()
		d.Pkt.Release()
	}
}
