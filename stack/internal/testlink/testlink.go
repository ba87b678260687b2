// Package testlink is a link endpoint for packet-level tests of the
// network layers: it records every frame the stack writes, so a test can
// assert the exact frames, and injects frames into the stack
// synchronously. It is imported only by _test.go files.
package testlink

import (
	"bytes"
	"sync"
	"sync/atomic"

	"github.com/netprov/netprov/stack/buffer"
	"github.com/netprov/netprov/stack/header"
	"github.com/netprov/netprov/stack/link"
)

// Link is a link.Endpoint that records written frames.
type Link struct {
	mtu  int
	mac  header.MAC
	caps link.Capabilities
	// discard drops written frames without recording them (benchmarks,
	// allocation tests).
	discard atomic.Bool

	mu     sync.Mutex
	frames [][]byte
	d      link.Dispatcher
}

var _ link.Endpoint = (*Link)(nil)

// New returns a link with the given address, MTU and capabilities.
func New(mac header.MAC, mtu int, caps link.Capabilities) *Link {
	return &Link{mtu: mtu, mac: mac, caps: caps}
}

// NewEthernet returns an Ethernet link with the given address and MTU.
func NewEthernet(mac header.MAC, mtu int) *Link { return New(mac, mtu, link.CapEthernet) }

// MTU implements link.Endpoint.
func (l *Link) MTU() int { return l.mtu }

// LinkAddress implements link.Endpoint.
func (l *Link) LinkAddress() header.MAC { return l.mac }

// Capabilities implements link.Endpoint.
func (l *Link) Capabilities() link.Capabilities { return l.caps }

// Close implements link.Endpoint.
func (l *Link) Close() error { return nil }

// Attach implements link.Endpoint; Inject delivers to d.
func (l *Link) Attach(d link.Dispatcher) {
	l.mu.Lock()
	l.d = d
	l.mu.Unlock()
}

// WritePackets implements link.Endpoint: it records a copy of each frame
// (unless discarding) and releases the packets.
func (l *Link) WritePackets(pkts []*buffer.Packet) (int, error) {
	if l.discard.Load() {
		for _, p := range pkts {
			p.Release()
		}
		return len(pkts), nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, p := range pkts {
		l.frames = append(l.frames, bytes.Clone(p.Data()))
		p.Release()
	}
	return len(pkts), nil
}

// SetDiscard makes the link drop written frames instead of recording
// them.
func (l *Link) SetDiscard(on bool) { l.discard.Store(on) }

// Take returns and forgets the frames written so far.
func (l *Link) Take() [][]byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.frames
	l.frames = nil
	return f
}

// Inject delivers frame to the attached dispatcher, synchronously.
func (l *Link) Inject(frame []byte) {
	l.mu.Lock()
	d := l.d
	l.mu.Unlock()
	d.DeliverLinkPacket(buffer.FromBytes(frame))
}
