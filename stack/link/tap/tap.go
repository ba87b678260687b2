// Package tap is a link endpoint on a Linux TAP device: the stack's frames
// are written to /dev/net/tun and the kernel's frames read from it. With
// Config.VnetHdr every frame carries a virtio-net header, so the stack can
// write 64 KiB TCP super-segments that the kernel segments, and receive
// coalesced ones.
package tap

import (
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/netprov/netprov/stack/header"
	"github.com/netprov/netprov/stack/link"
	"github.com/netprov/netprov/stack/link/internal/counters"
	"github.com/netprov/netprov/stack/link/vnet"
)

// Endpoint is a TAP device.
type Endpoint struct {
	name    string
	mtu     int
	mac     header.MAC
	vnetHdr bool
	caps    link.Capabilities

	file *os.File
	conn syscall.RawConn

	dispatcher atomic.Pointer[link.Dispatcher]
	closed     atomic.Bool
	closeOnce  sync.Once
	wg         sync.WaitGroup
	stats      counters.Counters

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
		file:    os.NewFile(uintptr(fd), "/dev/net/tun:"+name),
	}
	if cfg.VnetHdr {
		e.caps |= link.CapGSO | link.CapTXChecksumOffload
	}
	e.conn, err = e.file.SyscallConn()
	if err != nil {
		e.file.Close()
		return nil, fmt.Errorf("tap: %s: %w", name, err)
	}
	e.rx.init(e)
	e.tx.init(e)
	e.wg.Add(1)
	go e.readLoop()
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
func (e *Endpoint) Attach(d link.Dispatcher) {
	if d == nil {
		e.dispatcher.Store(nil)
		return
	}
	e.dispatcher.Store(&d)
}

// Stats returns the endpoint's counters.
func (e *Endpoint) Stats() link.Stats { return e.stats.Snapshot() }

// Close implements link.Endpoint: it stops the reader and closes the
// device (a non-persistent TAP disappears).
func (e *Endpoint) Close() error {
	var err error
	e.closeOnce.Do(func() {
		e.closed.Store(true)
		err = e.file.Close()
		e.wg.Wait()
		e.rx.release()
	})
	if err != nil {
		return fmt.Errorf("tap: close %s: %w", e.name, err)
	}
	return nil
}

// maxFrame is the largest frame the device takes from the stack.
func (e *Endpoint) maxFrame() int {
	if e.vnetHdr {
		return link.GSOMaxSize + header.EthernetLen
	}
	return e.mtu + header.EthernetLen
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
