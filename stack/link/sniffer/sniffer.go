// Package sniffer wraps a link endpoint and writes every frame it sends and
// receives to a pcap stream that tcpdump, tshark and Wireshark read.
package sniffer

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"

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
	inner    link.Endpoint
	clock    clock.Clock
	snaplen  int
	linkType uint32

	// on is read for every frame: while nothing records, a frame costs
	// one atomic load.
	on     atomic.Bool
	mu     sync.Mutex
	w      io.Writer
	hdr    [pcapRecordHdrLen]byte
	failed bool // a write failed: recording stopped
}

var _ link.Endpoint = (*Endpoint)(nil)

// New wraps inner and, when w is not nil, starts recording to it at once
// (Start). The link type is LINKTYPE_ETHERNET when inner has CapEthernet,
// else LINKTYPE_RAW. Write errors stop the recording (logged once);
// traffic is not affected.
func New(inner link.Endpoint, w io.Writer, cfg Config) (*Endpoint, error) {
	if cfg.Snaplen <= 0 {
		cfg.Snaplen = DefaultSnaplen
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	e := &Endpoint{inner: inner, clock: cfg.Clock, snaplen: cfg.Snaplen, linkType: LinkTypeRaw}
	if inner.Capabilities()&link.CapEthernet != 0 {
		e.linkType = LinkTypeEthernet
	}
	if w != nil {
		if err := e.Start(w); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// ErrRecording is returned by Start while another recording runs.
var ErrRecording = errors.New("sniffer: already recording")

// Start writes a pcap file header to w and records every frame to it
// until Stop (netprov capture attaches to a running stack this way).
func (e *Endpoint) Start(w io.Writer) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.on.Load() {
		return ErrRecording
	}
	var fh [pcapFileHdrLen]byte
	putFileHeader(fh[:], uint32(e.snaplen), e.linkType)
	if _, err := w.Write(fh[:]); err != nil {
		return fmt.Errorf("sniffer: write pcap header: %w", err)
	}
	e.w, e.failed = w, false
	e.on.Store(true)
	return nil
}

// Stop ends the recording; the writer is not closed.
func (e *Endpoint) Stop() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.on.Store(false)
	e.w = nil
}

// record appends one frame to the pcap stream.
func (e *Endpoint) record(b []byte) {
	if !e.on.Load() {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.failed || e.w == nil {
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
