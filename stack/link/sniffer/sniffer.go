// Package sniffer wraps a link endpoint and writes every frame it sends and
// receives to a pcap stream that tcpdump, tshark and Wireshark read.
package sniffer

import (
	"fmt"
	"io"
	"log/slog"
	"sync"

	"github.com/netprov/netprov/stack/buffer"
	"github.com/netprov/netprov/stack/clock"
	"github.com/netprov/netprov/stack/header"
	"github.com/netprov/netprov/stack/link"
)

// DefaultSnaplen is the largest number of bytes recorded per frame
// (tcpdump's default).
const DefaultSnaplen = 262144

// Config describes a sniffer.
type Config struct {
	// Snaplen limits the bytes recorded per frame (default 262144).
	Snaplen int
	// Clock timestamps the records (default clock.Real{}).
	Clock clock.Clock
}

// Endpoint is a link endpoint that records the traffic of the endpoint it
// wraps. It forwards every call to the wrapped endpoint.
type Endpoint struct {
	inner   link.Endpoint
	clock   clock.Clock
	snaplen int

	mu     sync.Mutex
	w      io.Writer
	hdr    [pcapRecordHdrLen]byte
	failed bool // a write failed: recording stopped
}

var _ link.Endpoint = (*Endpoint)(nil)

// New wraps inner and writes the pcap file header to w at once. The link
// type is LINKTYPE_ETHERNET when inner has CapEthernet, else LINKTYPE_RAW.
// Write errors stop the recording (logged once); traffic is not affected.
func New(inner link.Endpoint, w io.Writer, cfg Config) (*Endpoint, error) {
	if cfg.Snaplen <= 0 {
		cfg.Snaplen = DefaultSnaplen
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	linkType := uint32(LinkTypeRaw)
	if inner.Capabilities()&link.CapEthernet != 0 {
		linkType = LinkTypeEthernet
	}
	var fh [pcapFileHdrLen]byte
	putFileHeader(fh[:], uint32(cfg.Snaplen), linkType)
	if _, err := w.Write(fh[:]); err != nil {
		return nil, fmt.Errorf("sniffer: write pcap header: %w", err)
	}
	return &Endpoint{inner: inner, clock: cfg.Clock, snaplen: cfg.Snaplen, w: w}, nil
}

// record appends one frame to the pcap stream.
func (e *Endpoint) record(b []byte) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.failed {
		return
	}
	captured := min(len(b), e.snaplen)
	putRecordHeader(e.hdr[:], e.clock.Now(), captured, len(b))
	if _, err := e.w.Write(e.hdr[:]); err != nil {
		e.fail(err)
		return
	}
	if _, err := e.w.Write(b[:captured]); err != nil {
		e.fail(err)
	}
}

func (e *Endpoint) fail(err error) {
	e.failed = true
	slog.Warn("sniffer: pcap write failed, recording stopped", "err", err)
}

// MTU implements link.Endpoint.
func (e *Endpoint) MTU() int { return e.inner.MTU() }

// LinkAddress implements link.Endpoint.
func (e *Endpoint) LinkAddress() header.MAC { return e.inner.LinkAddress() }

// Capabilities implements link.Endpoint.
func (e *Endpoint) Capabilities() link.Capabilities { return e.inner.Capabilities() }

// Attach implements link.Endpoint.
func (e *Endpoint) Attach(d link.Dispatcher) {
	if d == nil {
		e.inner.Attach(nil)
		return
	}
	e.inner.Attach(&tap{e: e, d: d})
}

// WritePackets implements link.Endpoint: it records the frames, then hands
// them (and their ownership) to the wrapped endpoint.
func (e *Endpoint) WritePackets(pkts []*buffer.Packet) (int, error) {
	for _, p := range pkts {
		e.record(p.Data())
	}
	return e.inner.WritePackets(pkts)
}

// Close implements link.Endpoint. It closes the wrapped endpoint, not the
// writer.
func (e *Endpoint) Close() error { return e.inner.Close() }

// Inner returns the wrapped endpoint (for its Stats, for example).
func (e *Endpoint) Inner() link.Endpoint { return e.inner }

// tap records received frames before passing them on.
type tap struct {
	e *Endpoint
	d link.Dispatcher
}

func (t *tap) DeliverLinkPacket(p *buffer.Packet) {
	t.e.record(p.Data())
	t.d.DeliverLinkPacket(p)
}
