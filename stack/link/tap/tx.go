package tap

import (
	"errors"
	"fmt"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/stack/buffer"
	"github.com/netprov/netprov/stack/header"
	"github.com/netprov/netprov/stack/link/internal/linkbase"
	"github.com/netprov/netprov/stack/link/vnet"
)

// transmitter is the state of WritePackets, serialized by mu.
type transmitter struct {
	e       *Endpoint
	mu      sync.Mutex
	pkts    []*buffer.Packet // the batch being written
	next    int              // first packet not yet written
	sent    int
	bytes   uint64
	err     error // first write error of the batch
	writeFn func(fd uintptr) bool
}

func (t *transmitter) init(e *Endpoint) {
	t.e = e
	t.writeFn = t.writeBatch
}

// WritePackets implements link.Endpoint: one write(2) per frame (a TAP
// device takes one frame per write), with the virtio-net header put in the
// packet's headroom when VnetHdr is on.
func (e *Endpoint) WritePackets(pkts []*buffer.Packet) (int, error) {
	if e.fd.Closed() {
		linkbase.DropWrites(pkts, &e.stats)
		return 0, errClosed
	}
	t := &e.tx
	t.mu.Lock()
	defer t.mu.Unlock()
	t.pkts, t.next, t.sent, t.bytes, t.err = pkts, 0, 0, 0, nil
	err := e.fd.Conn.Write(t.writeFn)
	// Packets not reached (the file was closed meanwhile) are dropped.
	for _, p := range pkts[t.next:] {
		p.Release()
		e.stats.TxDropped.Add(1)
	}
	sent, bytes := t.sent, t.bytes
	if err == nil {
		err = t.err
	}
	t.pkts = nil
	e.stats.TxPackets.Add(uint64(sent))
	e.stats.TxBytes.Add(bytes)
	if err != nil {
		return sent, fmt.Errorf("tap: write to %s: %w", e.name, err)
	}
	return sent, nil
}

// writeBatch writes the remaining packets; it returns false to wait for
// writability.
func (t *transmitter) writeBatch(fd uintptr) bool {
	e := t.e
	for t.next < len(t.pkts) {
		p := t.pkts[t.next]
		n := p.Len()
		if !linkbase.FrameFits(p, e.vnetHdr, e.mtu) {
			e.stats.TxDropped.Add(1)
			p.Release()
			t.next++
			continue
		}
		if e.vnetHdr && p.Headroom() < vnet.LenMrg {
			// No room for the header: move the frame (rare; the stack
			// builds packets with buffer.Headroom).
			c := buffer.New(vnet.LenMrg, n)
			copy(c.Append(n), p.Data())
			c.Meta = p.Meta
			p.Release()
			p = c
			t.pkts[t.next] = c
		}
		b := p.Data()
		if e.vnetHdr {
			h := vnet.ForOutput(&p.Meta, b, header.EthernetLen)
			hb := p.Prepend(vnet.LenMrg)
			h.Encode(hb)
			hb[10], hb[11] = 0, 0 // num_buffers
			b = p.Data()
		}
		_, err := unix.Write(int(fd), b)
		switch {
		case err == nil:
			t.sent++
			t.bytes += uint64(n)
		case errors.Is(err, unix.EINTR) || errors.Is(err, unix.EAGAIN):
			if e.vnetHdr {
				p.TrimFront(vnet.LenMrg)
			}
			if errors.Is(err, unix.EAGAIN) {
				return false
			}
			continue
		default:
			e.stats.TxDropped.Add(1)
			if t.err == nil {
				t.err = err
			}
		}
		p.Release()
		t.next++
	}
	return true
}
