// Package afpacket is a link endpoint on an AF_PACKET raw socket bound to
// an existing interface (typically one end of a veth pair). Frames move in
// batches with recvmmsg and sendmmsg; with Config.VnetHdr each carries a
// virtio-net header for segmentation and checksum offload.
package afpacket

import (
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/stack/header"
	"github.com/netprov/netprov/stack/link"
	"github.com/netprov/netprov/stack/link/internal/counters"
	"github.com/netprov/netprov/stack/link/internal/linkbase"
)

// Endpoint is a packet socket on one interface.
type Endpoint struct {
	iface   string
	mtu     int
	mac     header.MAC
	vnetHdr bool
	caps    link.Capabilities

	fd       linkbase.FD
	dispatch linkbase.Dispatch
	stats    counters.Counters

	rx receiver
	tx transmitter
}

var _ link.Endpoint = (*Endpoint)(nil)

// New opens a packet socket on cfg.Interface and starts receiving.
func New(cfg Config) (*Endpoint, error) {
	if cfg.Interface == "" {
		return nil, fmt.Errorf("afpacket: no interface: %w", unix.EINVAL)
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = DefaultBatchSize
	}
	fd, info, err := openSocket(&cfg)
	if err != nil {
		return nil, err
	}
	if cfg.MAC == (header.MAC{}) {
		cfg.MAC = info.mac
	}
	if cfg.MTU <= 0 {
		cfg.MTU = info.mtu
	}
	e := &Endpoint{
		iface:   cfg.Interface,
		mtu:     cfg.MTU,
		mac:     cfg.MAC,
		vnetHdr: cfg.VnetHdr,
		caps:    link.CapEthernet,
	}
	if cfg.VnetHdr {
		e.caps |= link.CapGSO | link.CapTXChecksumOffload
	}
	if err := e.fd.Init(fd, "afpacket:"+cfg.Interface); err != nil {
		return nil, fmt.Errorf("afpacket: %s: %w", cfg.Interface, err)
	}
	e.rx.init(e, cfg.BatchSize)
	e.tx.init(e, cfg.BatchSize)
	e.fd.StartReader(&e.rx.batch, e.rx.readBatch, e.deliver)
	return e, nil
}

// MTU implements link.Endpoint.
func (e *Endpoint) MTU() int { return e.mtu }

// LinkAddress implements link.Endpoint.
func (e *Endpoint) LinkAddress() header.MAC { return e.mac }

// Capabilities implements link.Endpoint.
func (e *Endpoint) Capabilities() link.Capabilities { return e.caps }

// Attach implements link.Endpoint.
func (e *Endpoint) Attach(d link.Dispatcher) { e.dispatch.Attach(d) }

// Stats returns the endpoint's counters.
func (e *Endpoint) Stats() link.Stats { return e.stats.Snapshot() }

// Close implements link.Endpoint: it stops the reader and closes the
// socket.
func (e *Endpoint) Close() error {
	if err := e.fd.Close(e.rx.release); err != nil {
		return fmt.Errorf("afpacket: close %s: %w", e.iface, err)
	}
	return nil
}
