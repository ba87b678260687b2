// Package tap is a link endpoint on a Linux TAP device: the stack's frames
// are written to /dev/net/tun and the kernel's frames read from it. With
// Config.VnetHdr every frame carries a virtio-net header, so the stack can
// write 64 KiB TCP super-segments that the kernel segments, and receive
// coalesced ones.
package tap

import (
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/stack/header"
	"github.com/netprov/netprov/stack/link"
	"github.com/netprov/netprov/stack/link/internal/counters"
	"github.com/netprov/netprov/stack/link/internal/linkbase"
	"github.com/netprov/netprov/stack/link/vnet"
)

// Endpoint is a TAP device.
type Endpoint struct {
	name    string
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

// New creates (or attaches to) the TAP device and starts reading from it.
// The kernel interface is left down: the caller configures it.
func New(cfg Config) (*Endpoint, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	fd, name, err := openTAP(&cfg)
	if err != nil {
		return nil, err
	}
	e := &Endpoint{
		name:    name,
		mtu:     cfg.MTU,
		mac:     cfg.MAC,
		vnetHdr: cfg.VnetHdr,
		caps:    link.CapEthernet,
	}
	if cfg.VnetHdr {
		e.caps |= link.CapGSO | link.CapTXChecksumOffload
	}
	if err := e.fd.Init(fd, "/dev/net/tun:"+name); err != nil {
		return nil, fmt.Errorf("tap: %s: %w", name, err)
	}
	e.rx.init(e)
	e.tx.init(e)
	e.fd.StartReader(&e.rx.batch, e.rx.readBatch, e.deliver)
	return e, nil
}

// Name returns the kernel's name of the device.
func (e *Endpoint) Name() string { return e.name }

// MTU implements link.Endpoint.
func (e *Endpoint) MTU() int { return e.mtu }

// LinkAddress implements link.Endpoint: the stack's MAC, not the kernel
// interface's.
func (e *Endpoint) LinkAddress() header.MAC { return e.mac }

// Capabilities implements link.Endpoint.
func (e *Endpoint) Capabilities() link.Capabilities { return e.caps }

// Attach implements link.Endpoint.
func (e *Endpoint) Attach(d link.Dispatcher) { e.dispatch.Attach(d) }

// Stats returns the endpoint's counters.
func (e *Endpoint) Stats() link.Stats { return e.stats.Snapshot() }

// Close implements link.Endpoint: it stops the reader and closes the
// device (a non-persistent TAP disappears).
func (e *Endpoint) Close() error {
	if err := e.fd.Close(e.rx.release); err != nil {
		return fmt.Errorf("tap: close %s: %w", e.name, err)
	}
	return nil
}

// errClosed is returned by writes after Close.
const errClosed = unix.ENETDOWN

// vnetLen is the header length in front of each frame (0 without VnetHdr).
func (e *Endpoint) vnetLen() int {
	if e.vnetHdr {
		return vnet.LenMrg
	}
	return 0
}
